#if canImport(Glibc)
import Glibc
#endif

/// The names of the entries of `directory` (without `.` and `..`), or `[]` if it cannot be read.
public func directoryEntries(_ directory: String) -> [String] {
    guard let handle = opendir(directory) else { return [] }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// The whole content of a regular file smaller than `limit` bytes, or `nil`.
public func readSmallFile(_ path: String, limit: Int = 8 << 20) -> [UInt8]? {
    guard let file = try? OpenFile.open(path: path), let size = try? file.size(), size < limit else { return nil }
    var bytes: [UInt8] = []
    guard (try? file.read(at: 0, count: Int(size), into: &bytes)) != nil, bytes.count == Int(size) else { return nil }
    return bytes
}

/// Whether users other than the owner and group may read the file at `path`.
public func isReadableByOthers(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && info.st_mode & S_IROTH != 0
}
