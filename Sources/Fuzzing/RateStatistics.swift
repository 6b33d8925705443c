/// The figures `Tools/fuzz rate` reports (docs/fuzzing.md): this build's exec/s (or runs/s)
/// over another's in each round, and the median of those ratios, the figure to quote, since the
/// machine's speed moves from one minute to the next and only runs that take turns compare.
public enum RateStatistics {
    /// `ours / theirs`; 0 when `theirs` measured nothing.
    public static func ratio(ours: Double, theirs: Double) -> Double {
        theirs > 0 ? ours / theirs : 0
    }

    /// The median of `values` (the mean of the middle two for an even count); nil for none.
    public static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
