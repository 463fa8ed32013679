/// tailsse's version, as `tailsse --version` prints it: the one place it is written. The Makefile
/// reads it from here for the Debian package (`make deb`), so the package and the binary agree.
enum TailSSEVersion {
    static let current = "0.1.0"
}
