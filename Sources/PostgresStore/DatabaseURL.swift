import Foundation
import NIOSSL
import PostgresNIO
import Store

/// A `postgres://user:password@host:port/database?sslmode=…` URL (libpq's form; `postgresql://` too), as given to
/// `--database` or `POSTLENS_DATABASE_URL`.
///
/// - `sslmode`: `disable`, `prefer` (the default, as in libpq: TLS when the server offers it, certificate not
///   checked), `require` (TLS, certificate not checked) or `verify-full` (TLS, certificate and host name checked).
/// - `host=/var/run/postgresql` in the query: a Unix socket folder instead of TCP.
/// - `application_name`: shown in `pg_stat_activity` (default `postlens`).
public struct DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    public enum TLSMode: String, Sendable { case disable, prefer, require, verifyFull = "verify-full" }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// A folder holding the server's Unix socket (`.s.PGSQL.<port>`), when connecting that way.
    public var socketDirectory: String?
    public var applicationName: String

    /// Reads a URL; the error says what is wrong and what a good one looks like.
    public init(_ text: String) throws {
        func bad(_ why: String) -> StoreError {
            .invalid("--database: \(why); expected postgres://USER:PASSWORD@HOST:PORT/DATABASE (e.g. postgres://postlens@127.0.0.1:5432/postlens)")
        }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let components = URLComponents(string: trimmed) else { throw bad("not a URL") }
        guard let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
            throw bad("the scheme must be postgres:// or postgresql://")
        }
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] { query[item.name] = item.value ?? "" }
        socketDirectory = query["host"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        host = components.percentEncodedHost.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding } ?? (socketDirectory == nil ? "127.0.0.1" : "")
        port = components.port ?? Int(query["port"] ?? "") ?? 5432
        guard (1...65535).contains(port) else { throw bad("port \(port) is out of range") }
        user = components.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? query["user"] ?? "postgres"
        password = components.percentEncodedPassword.flatMap { $0.removingPercentEncoding } ?? query["password"]
        let encodedPath = components.percentEncodedPath
        let path = encodedPath.hasPrefix("/") ? String(encodedPath.dropFirst()) : encodedPath
        database = path.removingPercentEncoding.flatMap { $0.isEmpty ? nil : $0 } ?? query["dbname"] ?? user
        let mode = query["sslmode"]?.lowercased() ?? "prefer"
        switch mode {
        case "disable", "allow": tls = .disable
        case "prefer": tls = .prefer
        case "require", "verify-ca": tls = .require
        case "verify-full": tls = .verifyFull
        default: throw bad("sslmode must be disable, prefer, require or verify-full, not \(mode)")
        }
        applicationName = query["application_name"] ?? "postlens"
    }

    /// The URL with the password hidden (for logs and error messages).
    public var description: String {
        let place = socketDirectory.map { "[\($0)]:\(port)" } ?? "\(host):\(port)"
        return "postgres://\(user)\(password == nil ? "" : ":***")@\(place)/\(database)"
    }

    /// The connection pool's configuration.
    func clientConfiguration(maximumConnections: Int) -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let socketDirectory {
            configuration = .init(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: password,
                                  database: database)
        } else {
            configuration = .init(host: host, port: port, username: user, password: password, database: database, tls: tlsConfiguration)
        }
        configuration.options.maximumConnections = max(2, maximumConnections)
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.additionalStartupParameters = [("application_name", applicationName)]
        // A dead peer (a network cut) is noticed within a minute on an idle connection.
        configuration.options.keepAliveBehavior = .init(frequency: .seconds(20))
        return configuration
    }

    /// One connection outside the pool (the start-up probe: it fails at once, with the server's reason).
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        if let socketDirectory {
            configuration = .init(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            let context: PostgresConnection.Configuration.TLS
            switch tls {
            case .disable: context = .disable
            case .prefer, .require:
                var unverified = TLSConfiguration.makeClientConfiguration()
                unverified.certificateVerification = .none
                let ssl = try NIOSSLContext(configuration: unverified)
                context = tls == .prefer ? .prefer(ssl) : .require(ssl)
            case .verifyFull: context = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
            configuration = .init(host: host, port: port, username: user, password: password, database: database, tls: context)
        }
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.additionalStartupParameters = [("application_name", applicationName)]
        return configuration
    }

    private var tlsConfiguration: PostgresClient.Configuration.TLS {
        switch tls {
        case .disable: return .disable
        case .prefer, .require:
            var unverified = TLSConfiguration.makeClientConfiguration()
            unverified.certificateVerification = .none
            return tls == .prefer ? .prefer(unverified) : .require(unverified)
        case .verifyFull: return .require(.makeClientConfiguration())
        }
    }
}
