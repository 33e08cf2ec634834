import Foundation
import Prometheus
import Store
import Synchronization

/// Batch jobs in `/metrics`, read from the jobs' database when scraped, so every server behind a load balancer reports
/// the same fleet: queue depth, items leased, expired leases, jobs by state, and per worker (labelled by its id) the
/// items it claimed, finished, failed and retried, its lease expiries and its heartbeat age.
///
/// Per-worker values are the workers' own running totals, published with each lease renewal; they are gauges (a
/// worker that restarts starts again from zero under a new id).
final class JobMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let databaseUp: Gauge
    private let queueDepth: Gauge
    private let claimed: Gauge
    private let expired: Gauge
    private let leaseExpiries: Gauge
    private let jobs: [(JobState, Gauge)]
    /// Workers shown at the last scrape, with their gauges (removed when a worker leaves the list).
    private let workerGauges = Mutex<[String: [Gauge]]>([:])

    /// Workers whose heartbeat is older than this are left out (stopped long ago).
    static let forgetWorkersAfter: TimeInterval = 3600

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        func gauge(_ name: String, _ help: String, labels: [(String, String)] = []) -> Gauge {
            registry.makeGauge(descriptor: .init(metricName: name, unitName: "", helpText: help), labels: labels)
        }
        databaseUp = gauge("postlens_jobs_database_up", "1 when the jobs' database answered the last scrape, else 0.")
        queueDepth = gauge("postlens_jobs_queue_depth", "Items of open jobs waiting to be claimed (retries waiting out their backoff included).")
        claimed = gauge("postlens_jobs_claimed_items", "Items leased to a worker now (lease still valid).")
        expired = gauge("postlens_jobs_expired_leases", "Items whose worker's lease ran out and that no worker has taken over yet.")
        leaseExpiries = gauge("postlens_jobs_lease_expiries", "Leases that expired and were taken over, summed over the listed workers.")
        jobs = JobState.allCases.map { state in
            (state, gauge("postlens_jobs", "Jobs by state.", labels: [("state", state.rawValue)]))
        }
    }

    /// Reads the queue's statistics; a database that does not answer sets `postlens_jobs_database_up` to 0.
    func refresh(from batches: BatchService) async {
        let statistics: QueueStatistics
        do {
            statistics = try await batches.queue.statistics()
        } catch {
            databaseUp.set(0.0)
            return
        }
        databaseUp.set(1.0)
        queueDepth.set(Double(statistics.queued))
        claimed.set(Double(statistics.claimed))
        expired.set(Double(statistics.expired))
        for (state, gauge) in jobs { gauge.set(Double(statistics.jobsByState[state] ?? 0)) }
        let now = Date()
        let workers = statistics.workers.filter { now.timeIntervalSince($0.heartbeatAt) < Self.forgetWorkersAfter }
        leaseExpiries.set(Double(workers.reduce(0) { $0 + $1.leaseExpiries }))
        updateWorkers(workers, now: now)
    }

    private func updateWorkers(_ workers: [WorkerRecord], now: Date) {
        let registry = registry
        func gauge(_ name: String, _ help: String, _ worker: WorkerRecord) -> Gauge {
            registry.makeGauge(descriptor: .init(metricName: name, unitName: "", helpText: help),
                               labels: [("worker", worker.id), ("host", worker.host)])
        }
        let stale: [Gauge] = workerGauges.withLock { shown in
            var next: [String: [Gauge]] = [:]
            for worker in workers {
                let values: [(String, String, Double)] = [
                    ("postlens_worker_claimed_items", "Items this worker claimed since it started.", Double(worker.counters.claimed)),
                    ("postlens_worker_succeeded_items", "Items this worker finished with a result.", Double(worker.counters.succeeded)),
                    ("postlens_worker_failed_items", "Items this worker finished with a recorded error.", Double(worker.counters.failed)),
                    ("postlens_worker_retries", "Items this worker put back for a retry after a transient failure.", Double(worker.counters.retries)),
                    ("postlens_worker_lease_expiries", "Leases this worker held that expired and were taken over.", Double(worker.leaseExpiries)),
                    ("postlens_worker_in_flight", "Items this worker is running now.", Double(worker.counters.inFlight)),
                    ("postlens_worker_heartbeat_age_seconds", "Seconds since this worker last renewed its leases.",
                     (now.timeIntervalSince(worker.heartbeatAt) * 10).rounded() / 10),
                    ("postlens_worker_running", "1 while the worker claims items, 0 when draining or stopped.", worker.state == .running ? 1 : 0),
                ]
                next[worker.id] = values.map { name, help, value in
                    let g = gauge(name, help, worker)
                    g.set(value)
                    return g
                }
            }
            let gone = shown.filter { next[$0.key] == nil }.flatMap(\.value)
            shown = next
            return gone
        }
        for gauge in stale { registry.unregisterGauge(gauge) }
    }
}
