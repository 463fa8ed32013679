#if canImport(Glibc)
import Glibc
#endif
import NIOSSL

/// Where the server's certificate and private key are: with them tailsse serves HTTPS, offering
/// HTTP/2 and HTTP/1.1 (ALPN `h2`, `http/1.1`).
public struct TLSSettings: Sendable, Equatable {
    /// The certificate chain, PEM: the server's certificate first, then any intermediates.
    public var certificatePath: String
    /// The certificate's private key, PEM.
    public var keyPath: String

    public init(certificatePath: String, keyPath: String) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
    }

    /// Reads the certificate chain and key (blocking: call it off the cooperative pool).
    func loadConfiguration() throws(TLSLoadError) -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw TLSLoadError(Self.unreadable(certificatePath) ?? "\(certificatePath): no PEM certificate in the file (\(error))")
        }
        guard !chain.isEmpty else { throw TLSLoadError("\(certificatePath): no PEM certificate in the file") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw TLSLoadError(Self.unreadable(keyPath) ?? "\(keyPath): no PEM private key in the file (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }

    /// Why `path` cannot be opened for reading, or `nil` when it can.
    private static func unreadable(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor < 0 else {
            close(descriptor)
            return nil
        }
        return "\(path): cannot read: \(String(cString: strerror(errno)))"
    }
}

/// A certificate or key that cannot be served, with the file and the reason.
public struct TLSLoadError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
