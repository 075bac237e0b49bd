import Foundation

/// `report.md`: the results as Markdown tables a person reads at a glance.
public enum EvaluationReport {
    public static func markdown(_ r: EvaluationResults, chartFiles: [String] = []) -> String {
        var s = "# Balcony evaluation\n\n"
        s += "Model `\(r.model.path)` (\(r.model.architecture), \(r.model.layers) layers, dim \(r.model.dim), "
        s += "fingerprint `\(ModelFingerprint.short(r.model.fingerprint))`).\n\n"
        if !r.balconies.isEmpty {
            s += "| series | balconies | init | steps | training tokens | exits |\n|---|---|---|---:|---:|---|\n"
            for v in r.balconies {
                s += "| \(v.method) | \(v.file.map { "`\($0)`" } ?? "in memory") | \(v.initialization) | \(v.steps) | \(v.tokensSeen) | \(v.exits.map(String.init).joined(separator: ", ")) |\n"
            }
            s += "\n"
        }
        let st = r.settings
        s += "Settings: baselines \(st.baselines.isEmpty ? "none" : st.baselines.map(\.rawValue).joined(separator: ", ")) at depths "
        s += "\(st.depths.map(String.init).joined(separator: ", ")); window \(st.window) tokens; "
        s += "max tokens per file \(st.maxTokens.map(String.init) ?? "all"); \(st.numFewshot)-shot tasks, seed \(st.seed); \(st.threads) thread(s).\n\n"
        s += "`cost` is the fraction of the full model's weight bytes read per decoded token (the ideal speedup's inverse); "
        s += "`tok/s` is measured greedy decoding on this machine; `KL` is KL(full ‖ method) in nats per token; "
        s += "`agree` is top-1 agreement with the full model.\n\n"
        for chart in chartFiles { s += "![quality vs cost](\(chart))\n\n" }

        for d in r.data {
            s += "## \(URL(fileURLWithPath: d.file).lastPathComponent)\n\n"
            s += "`\(d.file)`, \(d.tokens) tokens, \(d.bytes) bytes, sha256 `\(d.sha256.prefix(16))…`\n\n"
            s += "| method | exit | cost | tok/s | perplexity | bits/byte | KL | agree |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
            for q in d.rows {
                s += "| \(q.method) | \(q.exit.map(String.init) ?? "–") | \(fmt(q.cost, 3)) | \(q.tokensPerSecond.map { fmt($0, 0) } ?? "–") | "
                s += "\(fmt(q.perplexity, 3)) | \(fmt(q.bitsPerByte, 4)) | \(fmt(q.kl, 4)) | \(fmt(100 * q.agreement, 1)) % |\n"
            }
            s += "\n" + comparison(d.rows, value: \.perplexity, name: "perplexity", lowerIsBetter: true) + "\n"
        }
        for t in r.tasks {
            s += "## Task \(t.name) (\(t.format.rawValue), \(t.items) items, \(t.numFewshot)-shot)\n\n`\(t.file)`\n\n"
            s += "| method | exit | cost | acc | acc_norm |\n|---|---:|---:|---:|---:|\n"
            for q in t.rows {
                s += "| \(q.method) | \(q.exit.map(String.init) ?? "–") | \(fmt(q.cost, 3)) | \(fmt(q.acc, 4)) | \(fmt(q.accNorm, 4)) |\n"
            }
            s += "\n"
        }
        if let g = r.shortgpt {
            s += "## ShortGPT layer pruning\n\n"
            s += "Block Influence (1 − mean cosine between a layer's input and output) over \(g.blockInfluence.tokens) tokens of `\(g.calibrationFile)`; "
            s += "keeping k layers drops the N − k with the lowest BI.\n\n"
            s += "| layer | BI |\n|---:|---:|\n"
            for (l, b) in g.blockInfluence.scores.enumerated() { s += "| \(l) | \(fmt(b, 5)) |\n" }
            s += "\nRemoval order: \(g.removalOrder.map(String.init).joined(separator: ", ")). Layers kept: "
            s += g.kept.keys.sorted { Int($0)! < Int($1)! }.map { "k=\($0): \(g.kept[$0]!.map(String.init).joined(separator: ","))" }.joined(separator: "; ")
            s += ".\n"
        }
        return s
    }

    /// One row per depth: each series' value side by side, the best at that depth in bold.
    static func comparison(_ rows: [LanguageModelRow], value: KeyPath<LanguageModelRow, Double>, name: String, lowerIsBetter: Bool) -> String {
        var series: [String] = []
        for q in rows where q.exit != nil && !series.contains(q.method) { series.append(q.method) }
        let depths = Set(rows.compactMap(\.exit)).sorted()
        guard series.count > 1, !depths.isEmpty else { return "" }
        var s = "Each depth, \(name) by method (best in bold):\n\n| exit | " + series.joined(separator: " | ") + " |\n|---:|"
        s += String(repeating: "---:|", count: series.count) + "\n"
        for k in depths {
            let vals = series.map { m in rows.first { $0.method == m && $0.exit == k }?[keyPath: value] }
            let best = lowerIsBetter ? vals.compactMap { $0 }.min() : vals.compactMap { $0 }.max()
            s += "| \(k) | " + vals.map { v in
                guard let v else { return "–" }
                return v == best ? "**\(fmt(v, 3))**" : fmt(v, 3)
            }.joined(separator: " | ") + " |\n"
        }
        return s
    }

    static func fmt(_ v: Double, _ digits: Int) -> String {
        v.isFinite ? String(format: "%.\(digits)f", v) : "\(v)"
    }
}
