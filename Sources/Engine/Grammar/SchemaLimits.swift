/// Bounds on what compiling one schema may cost, so that no request can make the server spend minutes or gigabytes
/// on its `response_format`. Size limits alone are not enough: a 2 kB schema can expand exponentially through `$ref`
/// chains, a pattern of nested counted repetitions can have a huge automaton, and thousands of optional properties
/// or identical `anyOf` branches multiply the work of every decoding step. Each limit refuses such a schema with a
/// `SchemaError.tooComplex` that names it; `maxSteps` bounds the total work of reading and compiling whatever shape
/// the schema has. The defaults are far above what real answer schemas need (the task schemas use < 100 nodes).
public struct SchemaLimits: Sendable, Equatable {
    /// Schema nodes after every `$ref` is expanded.
    public var maxNodes = 5_000
    /// Nesting of schemas inside schemas (`properties`, `items`, `anyOf`, `$ref` targets).
    public var maxDepth = 32
    /// Values of one `enum` (after duplicates are merged).
    public var maxEnumValues = 1_000
    /// Bytes of all literal text the automaton must hold: enum/const values and property names.
    public var maxLiteralBytes = 200_000
    /// Alternatives of one `anyOf` (or `type` list) after identical ones are merged.
    public var maxAnyOfBranches = 64
    /// Length of one `pattern`, in bytes.
    public var maxPatternBytes = 1_000
    /// States of one pattern's automaton.
    public var maxPatternStates = 2_000
    /// Work units (nodes visited, members read, automaton transitions built, …) for the whole compile.
    public var maxSteps = 4_000_000

    public init() {}

    public static let `default` = SchemaLimits()
}

/// Counts one compile's work against `SchemaLimits.maxSteps` and polls for cancellation, so a schema compiled for a
/// client that has gone away stops within a few milliseconds.
final class CompileBudget {
    let limits: SchemaLimits
    private let isCancelled: () -> Bool
    private(set) var steps = 0
    private var nextPoll = 1 << 16

    init(limits: SchemaLimits = .default, isCancelled: @escaping () -> Bool = { false }) {
        self.limits = limits
        self.isCancelled = isCancelled
    }

    /// Adds `units` of work done at `path`; throws when the total passes the limit or the request was cancelled.
    @inline(__always)
    func spend(_ units: Int, at path: String) throws {
        steps += units
        if steps > limits.maxSteps {
            throw SchemaError.tooComplex(limit: "max_steps", value: limits.maxSteps, path: path,
                                         reason: "compiling it takes more than \(limits.maxSteps) steps")
        }
        if steps >= nextPoll {
            nextPoll = steps + (1 << 16)
            if isCancelled() { throw CancellationError() }
        }
    }
}
