import Foundation

/// The JSON Lines layouts `balcony eval --tasks` reads. Each adapter turns one line into a
/// `MultipleChoiceItem` with the prompt format of EleutherAI's lm-evaluation-harness task of the
/// same name (its `doc_to_text`, `doc_to_choice` and `doc_to_target`), so scores are comparable.
public enum TaskFormat: String, CaseIterable, Sendable, Codable {
    /// `{"context": str, "choices": [str], "label": int}`: continuation = " " + choice.
    case generic = "jsonl"
    /// Rowan Zellers' `hellaswag_{train,val}.jsonl` (or the Hugging Face rows): `activity_label`,
    /// `ctx_a`, `ctx_b` (or `ctx`), `endings`, `label`.
    case hellaswag
    /// AI2's `ARC-{Easy,Challenge}-*.jsonl`: `question.stem`, `question.choices[].{text,label}`,
    /// `answerKey` (or the Hugging Face rows: `question`, `choices.{text,label}`, `answerKey`).
    case arc
    /// PIQA's `{train,valid}.jsonl`: `goal`, `sol1`, `sol2`, with `label` inline or in the
    /// published `{train,valid}-labels.lst` beside the file.
    case piqa
    /// WinoGrande's `{train_*,dev}.jsonl`: `sentence` with one `_`, `option1`, `option2`, `answer` "1"/"2".
    case winogrande

    /// The format whose characteristic fields `object` has, if any.
    static func detect(_ object: [String: Any]) -> TaskFormat? {
        if object["context"] != nil && object["choices"] != nil { return .generic }
        if object["endings"] != nil { return .hellaswag }
        if object["answerKey"] != nil && object["question"] != nil { return .arc }
        if object["goal"] != nil && object["sol1"] != nil { return .piqa }
        if object["sentence"] != nil && object["option1"] != nil { return .winogrande }
        return nil
    }
}

/// A multiple-choice task read from a file.
public struct TaskSet: Sendable {
    /// The file's name without folder and extension, e.g. "ARC-Easy-Dev".
    public var name: String
    public var path: String
    public var format: TaskFormat
    public var items: [MultipleChoiceItem]

    /// Reads `spec`: a path, or `FORMAT:PATH` to force a format (otherwise it is detected from the
    /// first item's fields).
    public static func load(_ spec: String) throws -> TaskSet {
        var path = spec
        var forced: TaskFormat?
        if let colon = spec.firstIndex(of: ":"), let f = TaskFormat(rawValue: String(spec[..<colon]).lowercased()) {
            forced = f
            path = String(spec[spec.index(after: colon)...])
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw EvaluationError.unreadableFile(path, "not a readable UTF-8 file")
        }
        var lines: [(Int, [String: Any])] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let s = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if s.isEmpty { continue }
            guard let o = (try? JSONSerialization.jsonObject(with: Data(s.utf8))) as? [String: Any] else {
                throw EvaluationError.badTaskItem(file: path, line: i + 1, "not a JSON object; task files hold one JSON object per line")
            }
            lines.append((i + 1, o))
        }
        guard let first = lines.first else { throw EvaluationError.emptyTaskFile(path) }
        guard let format = forced ?? TaskFormat.detect(first.1) else {
            throw EvaluationError.unknownTaskFormat(file: path, "line \(first.0) has fields \(first.1.keys.sorted().joined(separator: ", ")), which match no known layout")
        }
        let labels = format == .piqa ? try piqaLabels(besides: path, needed: first.1["label"] == nil) : nil
        var items: [MultipleChoiceItem] = []
        for (n, (line, o)) in lines.enumerated() {
            do {
                var item = try adapt(o, format: format, externalLabel: labels.flatMap { n < $0.count ? $0[n] : nil })
                try item.validate()
                item.line = line
                items.append(item)
            } catch let TaskItemProblem.message(why) {
                throw EvaluationError.badTaskItem(file: path, line: line, why)
            }
        }
        if let labels, labels.count != lines.count {
            throw EvaluationError.badTaskItem(file: path, line: 1, "the labels file has \(labels.count) labels for \(lines.count) items")
        }
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        return TaskSet(name: name, path: path, format: format, items: items)
    }

    /// PIQA publishes labels apart from the items: `valid.jsonl` + `valid-labels.lst`.
    static func piqaLabels(besides path: String, needed: Bool) throws -> [Int]? {
        let url = URL(fileURLWithPath: path)
        let lst = url.deletingPathExtension().path + "-labels.lst"
        guard needed else { return nil }
        guard let text = try? String(contentsOfFile: lst, encoding: .utf8) else {
            throw EvaluationError.badTaskItem(file: path, line: 1, "PIQA items without a \"label\" field need the published labels file \(lst) beside them")
        }
        return try text.split(whereSeparator: \.isNewline).enumerated().map { i, s in
            guard let v = Int(s.trimmingCharacters(in: .whitespaces)) else {
                throw EvaluationError.badTaskItem(file: lst, line: i + 1, "'\(s)' is not a label (0 or 1)")
            }
            return v
        }
    }

    enum TaskItemProblem: Error { case message(String) }

    static func adapt(_ o: [String: Any], format: TaskFormat, externalLabel: Int?) throws -> MultipleChoiceItem {
        func string(_ key: String, in obj: [String: Any] = o) throws -> String {
            guard let s = obj[key] as? String else { throw TaskItemProblem.message("missing string field \"\(key)\" (\(format.rawValue) layout)") }
            return s
        }
        func strings(_ key: String, in obj: [String: Any] = o) throws -> [String] {
            guard let a = obj[key] as? [String] else { throw TaskItemProblem.message("missing list of strings \"\(key)\" (\(format.rawValue) layout)") }
            return a
        }
        func integer(_ key: String) throws -> Int {
            if let i = o[key] as? Int { return i }
            if let s = o[key] as? String, let i = Int(s) { return i }
            throw TaskItemProblem.message("missing integer field \"\(key)\" (\(format.rawValue) layout)")
        }
        switch format {
        case .generic:
            return MultipleChoiceItem(context: try string("context"), choices: try strings("choices"), label: try integer("label"))
        case .hellaswag:
            let ctx: String
            if let a = o["ctx_a"] as? String, let b = o["ctx_b"] as? String {
                ctx = a + " " + pythonCapitalize(b)
            } else {
                ctx = try string("ctx")
            }
            let query = hellaswagPreprocess(try string("activity_label") + ": " + ctx)
            return MultipleChoiceItem(context: query, choices: try strings("endings").map(hellaswagPreprocess), label: try integer("label"))
        case .arc:
            let stem: String, texts: [String], keys: [String]
            if let q = o["question"] as? [String: Any] {
                stem = try string("stem", in: q)
                guard let cs = q["choices"] as? [[String: Any]] else { throw TaskItemProblem.message("missing \"question.choices\" (arc layout)") }
                texts = try cs.map { try string("text", in: $0) }
                keys = try cs.map { try string("label", in: $0) }
            } else {
                stem = try string("question")
                guard let cs = o["choices"] as? [String: Any] else { throw TaskItemProblem.message("missing \"choices\" (arc layout)") }
                texts = try strings("text", in: cs)
                keys = try strings("label", in: cs)
            }
            let answer = try string("answerKey")
            guard let gold = keys.firstIndex(of: answer) else {
                throw TaskItemProblem.message("answerKey \"\(answer)\" is none of the choice labels \(keys.joined(separator: ", "))")
            }
            return MultipleChoiceItem(context: "Question: \(stem)\nAnswer:", choices: texts, label: gold)
        case .piqa:
            let label = o["label"] != nil ? try integer("label") : (externalLabel ?? -1)
            return MultipleChoiceItem(context: "Question: \(try string("goal"))\nAnswer:", choices: [try string("sol1"), try string("sol2")], label: label)
        case .winogrande:
            let sentence = try string("sentence")
            guard let blank = sentence.firstIndex(of: "_") else { throw TaskItemProblem.message("the sentence has no \"_\" blank") }
            let before = String(sentence[..<blank])
            let target = String(sentence[sentence.index(after: blank)...]).trimmingCharacters(in: .whitespaces)
            let answer = try string("answer")
            guard let a = Int(answer), a == 1 || a == 2 else { throw TaskItemProblem.message("answer \"\(answer)\" is neither \"1\" nor \"2\"") }
            // Partial scoring: the option fills the blank in the context; the rest of the sentence is
            // the continuation scored under each (the harness's winogrande task).
            let choices = [try string("option1"), try string("option2")].map {
                MultipleChoiceItem.Choice(context: before + $0, continuation: " " + target, normalizer: " " + target)
            }
            return MultipleChoiceItem(choices: choices, label: a - 1)
        }
    }

    /// lm-evaluation-harness's hellaswag `preprocess`: strip, " [title]" -> ". ", drop
    /// `[...]` artifacts of the WikiHow part, fold double spaces.
    static func hellaswagPreprocess(_ text: String) -> String {
        var s = text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: " [title]", with: ". ")
        s = s.replacingOccurrences(of: "\\[.*?\\]", with: "", options: .regularExpression)
        return s.replacingOccurrences(of: "  ", with: " ")
    }

    /// Python's `str.capitalize()`: the first character upper-cased, the rest lower-cased.
    static func pythonCapitalize(_ s: String) -> String {
        guard let f = s.first else { return s }
        return f.uppercased() + s.dropFirst().lowercased()
    }
}
