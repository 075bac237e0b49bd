import Foundation

/// Quality against relative cost, one line per method, exits as labelled points: a self-contained
/// SVG (no scripts, no external fonts or styles) that renders in any browser or `rsvg-convert`.
public struct QualityCostChart: Sendable {
    public struct Point: Sendable, Equatable {
        public var cost: Double
        public var quality: Double
        public var label: String
    }
    public struct Series: Sendable, Equatable {
        public var method: String
        public var points: [Point]
    }

    public var title: String
    public var yLabel: String
    public var series: [Series]
    /// Logarithmic quality axis (perplexities that span orders of magnitude).
    public var logScale: Bool

    public init(title: String, yLabel: String, series: [Series], logScale: Bool? = nil) {
        self.title = title
        self.yLabel = yLabel
        self.series = series
        let q = series.flatMap { $0.points.map(\.quality) }.filter { $0.isFinite }
        let lo = q.min() ?? 1, hi = q.max() ?? 1
        self.logScale = logScale ?? (lo > 0 && hi / lo > 4)
    }

    /// Series of a data file's rows: perplexity against cost.
    public static func perplexity(_ file: EvaluationResults.DataFile) -> QualityCostChart {
        let pts = file.rows.map { (method: $0.method, exit: $0.exit, cost: $0.cost, q: $0.perplexity) }
        return QualityCostChart(title: "Perplexity vs cost — \(URL(fileURLWithPath: file.file).lastPathComponent)",
                                yLabel: "perplexity (lower is better)", series: group(pts))
    }

    /// Series of a task's rows: accuracy against cost.
    public static func accuracy(_ task: EvaluationResults.Task) -> QualityCostChart {
        let pts = task.rows.map { (method: $0.method, exit: $0.exit, cost: $0.cost, q: $0.acc) }
        return QualityCostChart(title: "Accuracy vs cost — \(task.name) (\(task.numFewshot)-shot)",
                                yLabel: "acc (higher is better)", series: group(pts), logScale: false)
    }

    static func group(_ rows: [(method: String, exit: Int?, cost: Double, q: Double)]) -> [Series] {
        var order: [String] = []
        var points: [String: [Point]] = [:]
        for r in rows {
            if points[r.method] == nil { order.append(r.method) }
            points[r.method, default: []].append(Point(cost: r.cost, quality: r.q, label: r.exit.map { "\($0)" } ?? "full"))
        }
        return order.map { Series(method: $0, points: points[$0]!.sorted { $0.cost < $1.cost }) }
    }

    static let palette = ["#222222", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]

    public func svg() -> String {
        let width = 760.0, height = 480.0
        let left = 78.0, right = 210.0, top = 46.0, bottom = 58.0
        let plotW = width - left - right, plotH = height - top - bottom
        let qs = series.flatMap { $0.points.map(\.quality) }.filter { $0.isFinite && (!logScale || $0 > 0) }
        var lo = qs.min() ?? 0, hi = qs.max() ?? 1
        if lo == hi { lo -= 0.5 * max(abs(lo), 1); hi += 0.5 * max(abs(hi), 1) }
        let yTicks = logScale ? Self.logTicks(lo, hi) : Self.linearTicks(lo, hi)
        lo = min(lo, yTicks.first ?? lo)
        hi = max(hi, yTicks.last ?? hi)
        func ty(_ v: Double) -> Double {
            let f = logScale ? (log(v) - log(lo)) / (log(hi) - log(lo)) : (v - lo) / (hi - lo)
            return top + plotH * (1 - f)
        }
        func tx(_ c: Double) -> Double { left + plotW * c }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var s = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">
        <rect x="0" y="0" width="\(Int(width))" height="\(Int(height))" fill="#ffffff"/>
        <text x="\(f(left + plotW / 2))" y="24" text-anchor="middle" font-size="15" font-weight="bold">\(Self.escape(title))</text>
        <g class="axes" stroke="#444444" stroke-width="1">
        <line x1="\(f(left))" y1="\(f(top + plotH))" x2="\(f(left + plotW))" y2="\(f(top + plotH))"/>
        <line x1="\(f(left))" y1="\(f(top))" x2="\(f(left))" y2="\(f(top + plotH))"/>
        </g>

        """
        s += "<g class=\"x-ticks\" font-size=\"11\">\n"
        for i in 0...10 {
            let c = Double(i) / 10, x = tx(c)
            s += "<line x1=\"\(f(x))\" y1=\"\(f(top + plotH))\" x2=\"\(f(x))\" y2=\"\(f(top + plotH + 5))\" stroke=\"#444444\"/>"
            s += "<line x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(top + plotH))\" stroke=\"#eeeeee\"/>"
            s += "<text x=\"\(f(x))\" y=\"\(f(top + plotH + 18))\" text-anchor=\"middle\">\(String(format: "%.1f", c))</text>\n"
        }
        s += "</g>\n<g class=\"y-ticks\" font-size=\"11\">\n"
        for v in yTicks {
            let y = ty(v)
            s += "<line x1=\"\(f(left - 5))\" y1=\"\(f(y))\" x2=\"\(f(left))\" y2=\"\(f(y))\" stroke=\"#444444\"/>"
            s += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(left + plotW))\" y2=\"\(f(y))\" stroke=\"#eeeeee\"/>"
            s += "<text x=\"\(f(left - 8))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(Self.tickLabel(v))</text>\n"
        }
        s += "</g>\n"
        s += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 14))\" text-anchor=\"middle\">relative cost (fraction of the full model's bytes read per token)</text>\n"
        s += "<text transform=\"translate(18,\(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(Self.escape(yLabel + (logScale ? ", log scale" : "")))</text>\n"
        for (i, ser) in series.enumerated() {
            let color = Self.palette[i % Self.palette.count]
            let pts = ser.points.filter { $0.quality.isFinite && (!logScale || $0.quality > 0) }
            s += "<g class=\"series\" data-method=\"\(Self.escape(ser.method))\" stroke=\"\(color)\" fill=\"\(color)\">\n"
            s += "<polyline fill=\"none\" stroke-width=\"2\" points=\"\(pts.map { "\(f(tx($0.cost))),\(f(ty($0.quality)))" }.joined(separator: " "))\"/>\n"
            // Labels of series that share a point (ShortGPT keeping the first k layers is early exit)
            // alternate above and below it.
            let dy = i % 2 == 0 ? -6.0 : 14.0
            for p in pts {
                let x = tx(p.cost), y = ty(p.quality)
                s += "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"4\"><title>\(Self.escape(ser.method)) exit \(Self.escape(p.label)): cost \(String(format: "%.3f", p.cost)), \(Self.tickLabel(p.quality))</title></circle>"
                s += "<text x=\"\(f(x + 6))\" y=\"\(f(y + dy))\" stroke=\"none\" font-size=\"10\">\(Self.escape(p.label))</text>\n"
            }
            s += "</g>\n"
        }
        s += "<g class=\"legend\">\n"
        for (i, ser) in series.enumerated() {
            let color = Self.palette[i % Self.palette.count]
            let y = top + 10 + Double(i) * 20, x = left + plotW + 16
            s += "<line x1=\"\(f(x))\" y1=\"\(f(y))\" x2=\"\(f(x + 22))\" y2=\"\(f(y))\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            s += "<circle cx=\"\(f(x + 11))\" cy=\"\(f(y))\" r=\"4\" fill=\"\(color)\"/>"
            s += "<text x=\"\(f(x + 30))\" y=\"\(f(y + 4))\">\(Self.escape(ser.method))</text>\n"
        }
        s += "</g>\n</svg>\n"
        return s
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func tickLabel(_ v: Double) -> String {
        if abs(v) >= 1e5 { return String(format: "%.0e", v) }
        if v == v.rounded() { return String(format: "%.0f", v) }
        return abs(v) >= 10 ? String(format: "%.1f", v) : String(format: "%.3g", v)
    }

    /// About five round values covering [lo, hi].
    static func linearTicks(_ lo: Double, _ hi: Double) -> [Double] {
        let raw = (hi - lo) / 5
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        let start = floor(lo / step) * step
        return stride(from: start, through: ceil(hi / step) * step + step / 2, by: step).map { ($0 / step).rounded() * step }
    }

    /// 1-2-5 values per decade covering [lo, hi] (every integer decade step when the range is wide).
    static func logTicks(_ lo: Double, _ hi: Double) -> [Double] {
        var out: [Double] = []
        var decade = pow(10, floor(log10(lo)))
        let wide = hi / lo > 1e3
        while decade <= hi * 10 {
            for m in wide ? [1.0] : [1.0, 2, 5] {
                let v = m * decade
                if v >= lo / (wide ? 10 : 2.5) && v <= hi * (wide ? 10 : 2.5) { out.append(v) }
            }
            decade *= 10
        }
        // Keep the first tick at or below lo and the last at or above hi.
        let below = out.filter { $0 <= lo }.last, above = out.filter { $0 >= hi }.first
        return out.filter { (below ?? 0) <= $0 && $0 <= (above ?? .infinity) }
    }
}
