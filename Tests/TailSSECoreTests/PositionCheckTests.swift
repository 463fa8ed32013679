import TailSSECore
import Testing

@Suite("Position check")
struct PositionCheckTests {
    @Test("nothing fed (position 0) gives 0")
    func emptyIsZero() {
        #expect(PositionCheck().value == 0)
        #expect(PositionCheck(of: [UInt8]()).value == 0)
        var check = PositionCheck()
        check.feed([UInt8]())
        [UInt8]().withUnsafeBytes { check.feed($0) }
        #expect(check.value == 0)
        #expect(check == PositionCheck())
    }

    @Test("it is the 32-bit FNV-1a of the window (published test vectors)")
    func fnvVectors() {
        #expect(PositionCheck(of: Array("a".utf8)).value == 0xE40C_292C)
        #expect(PositionCheck(of: Array("foobar".utf8)).value == 0xBF9C_F968)
        #expect(PositionCheck(of: [0x00]).value != 0)
    }

    @Test("the value is the FNV-1a of the last 16 bytes, for every length")
    func matchesReference() {
        var rng = SplitMix64(seed: 16)
        for length in 0...100 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            #expect(PositionCheck(of: bytes).value == referenceCheck(bytes), "length \(length)")
        }
        #expect(PositionCheck.windowSize == 16)
    }

    @Test("the value depends only on the last 16 bytes")
    func onlyLastSixteenBytes() {
        var rng = SplitMix64(seed: 1616)
        for _ in 0..<200 {
            let suffix = (0..<16).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let prefixA = (0..<rng.int(0...40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let prefixB = (0..<rng.int(0...40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let a = PositionCheck(of: prefixA + suffix)
            #expect(a.value == PositionCheck(of: prefixB + suffix).value)
            #expect(a.value == PositionCheck(of: suffix).value)
            // Changing any one byte of the window changes the value (FNV-1a steps are bijections).
            var changed = suffix
            let index = rng.int(0...15)
            changed[index] ^= UInt8(rng.int(1...255))
            #expect(PositionCheck(of: prefixA + changed).value != a.value, "byte \(index)")
        }
    }

    @Test("feeding in pieces equals feeding at once, through both overloads")
    func piecesEqualWhole() {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<300 {
            let bytes = (0..<rng.int(0...80)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let whole = PositionCheck(of: bytes)
            var bySequence = PositionCheck()
            var byPointer = PositionCheck()
            var mixed = PositionCheck()
            var start = 0
            var toggle = false
            while start <= bytes.count {
                let end = min(bytes.count, start + rng.int(0...20))
                let piece = bytes[start..<end]
                bySequence.feed(piece)
                Array(piece).withUnsafeBytes { byPointer.feed($0) }
                if toggle { mixed.feed(piece) } else { Array(piece).withUnsafeBytes { mixed.feed($0) } }
                toggle.toggle()
                if end == bytes.count { break }
                start = end
            }
            #expect(bySequence == whole)
            #expect(byPointer == whole)
            #expect(mixed == whole)
            #expect(bySequence.value == referenceCheck(bytes))
            bytes.withUnsafeBytes { raw in
                var fromPointer = PositionCheck()
                fromPointer.feed(raw)
                #expect(fromPointer.value == whole.value)
            }
        }
    }

    @Test("feeding a non-array collection works the same (slices, reversed views)")
    func otherCollections() {
        let bytes = Array(0..<40).map(UInt8.init)
        #expect(PositionCheck(of: bytes[10...]).value == referenceCheck(bytes))
        #expect(PositionCheck(of: bytes.reversed()).value == referenceCheck(Array(bytes.reversed())))
        #expect(PositionCheck(of: "héllo".utf8).value == fnv1a32(Array("héllo".utf8)))
    }
}
