import Foundation

/// The CPU's caches as the operating system describes them, for choices that depend on whether
/// data fits in cache (`F32Packing.auto`).
public enum CacheTopology {
    /// Bytes of the largest (last-level) cache one core sees, from Linux's
    /// `/sys/devices/system/cpu/cpu0/cache`; nil where that is not available.
    public static let lastLevelBytes: Int? = lastLevelBytes(sysfs: URL(fileURLWithPath: "/sys/devices/system/cpu/cpu0/cache"))

    /// The size of the highest-level data or unified cache under `sysfs` (`index*/level`,
    /// `index*/type`, `index*/size` such as "32768K").
    static func lastLevelBytes(sysfs: URL) -> Int? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: sysfs.path) else { return nil }
        var best: (level: Int, bytes: Int)?
        for name in entries where name.hasPrefix("index") {
            let dir = sysfs.appendingPathComponent(name)
            func read(_ file: String) -> String? {
                (try? String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            guard let level = read("level").flatMap(Int.init), read("type") != "Instruction",
                  let bytes = read("size").flatMap(parseSize) else { continue }
            if best == nil || level > best!.level || (level == best!.level && bytes > best!.bytes) {
                best = (level, bytes)
            }
        }
        return best?.bytes
    }

    /// "32768K", "1M" or "512" (bytes) as a byte count.
    static func parseSize(_ s: String) -> Int? {
        let multipliers: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        if let last = s.last, let m = multipliers[last] { return Int(s.dropLast()).map { $0 * m } }
        return Int(s)
    }
}
