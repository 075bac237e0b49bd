/// Cuts streamed text at the first stop sequence. Text that could still be the start of a stop
/// sequence is held back until the next piece decides it, so a client never sees part of a stop.
public struct StopSequenceMatcher: Sendable {
    public let stops: [String]
    private var held = ""

    public init(stops: [String]) { self.stops = stops.filter { !$0.isEmpty } }

    /// Adds a piece of text; returns what can be sent now, and whether a stop sequence was found
    /// (the text before it is returned, the stop and everything after it dropped).
    public mutating func append(_ text: String) -> (text: String, stopped: Bool) {
        guard !stops.isEmpty else { return (text, false) }
        held += text
        if let cut = stops.compactMap({ held.range(of: $0)?.lowerBound }).min() {
            let out = String(held[..<cut])
            held = ""
            return (out, true)
        }
        // Keep the longest suffix of `held` that is a proper prefix of some stop sequence.
        var keep = 0
        for s in stops {
            for n in stride(from: min(s.count - 1, held.count), to: keep, by: -1) where held.hasSuffix(s.prefix(n)) {
                keep = n
                break
            }
        }
        let out = String(held.dropLast(keep))
        held = String(held.suffix(keep))
        return (out, false)
    }

    /// The text still held back when the generation ends without a stop.
    public mutating func finish() -> String {
        defer { held = "" }
        return held
    }
}
