/// A growable block of floats owned by a training workspace. Workspaces keep one per activation
/// and size it for the batch at hand, so that a training step allocates nothing once the first
/// step of a given shape has run. Contents are undefined after growth.
final class TrainingBuffer {
    private(set) var pointer = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    private(set) var capacity = 1

    /// Ensures room for `count` floats and returns the (possibly new) base address.
    @discardableResult
    func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            pointer.deallocate()
            pointer = .allocate(capacity: count)
            capacity = count
        }
        return pointer
    }

    deinit { pointer.deallocate() }
}
