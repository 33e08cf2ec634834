/// Which addresses a fetch on a client's behalf may reach: ordinary public unicast only. Everything else could turn
/// the server against the network it sits in (SSRF): loopback, private and link-local ranges (cloud metadata lives at
/// 169.254.169.254), carrier-grade NAT, multicast, reserved and documentation ranges — and the IPv6 forms that carry
/// an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4), which are judged by the address they carry, plus
/// Teredo and the other IETF protocol ranges, which are refused outright.
public enum AddressPolicy {
    /// Whether an address (4 or 16 bytes, network order) is an ordinary public unicast address.
    public static func isPublic(_ a: [UInt8]) -> Bool {
        if a.count == 4 { return isPublicIPv4(a) }
        guard a.count == 16 else { return false }
        let zeros = a.prefix(10).allSatisfy { $0 == 0 }
        if zeros && a[10] == 0xFF && a[11] == 0xFF { return isPublicIPv4(Array(a[12..<16])) }  // ::ffff:a.b.c.d mapped
        if zeros && a[10] == 0 && a[11] == 0 { return false }  // ::, ::1, ::a.b.c.d (IPv4-compatible, deprecated)
        // 64:ff9b::/96, the NAT64 well-known prefix: the IPv4 address it carries decides.
        if a[0] == 0x00, a[1] == 0x64, a[2] == 0xFF, a[3] == 0x9B, a[4..<12].allSatisfy({ $0 == 0 }) {
            return isPublicIPv4(Array(a[12..<16]))
        }
        if a[0] == 0x00, a[1] == 0x64, a[2] == 0xFF, a[3] == 0x9B, a[4] == 0x00, a[5] == 0x01 { return false }  // 64:ff9b:1::/48 local NAT64
        if a[0] == 0x01, a[1] == 0x00, a[2..<8].allSatisfy({ $0 == 0 }) { return false }  // 100::/64 discard
        if a[0] == 0x20, a[1] == 0x01, a[2] & 0xFE == 0x00 { return false }  // 2001::/23 IETF protocols (Teredo, benchmarking, ORCHID)
        if a[0] == 0x20, a[1] == 0x01, a[2] == 0x0D, a[3] == 0xB8 { return false }  // 2001:db8::/32 documentation
        if a[0] == 0x20, a[1] == 0x02 { return isPublicIPv4(Array(a[2..<6])) }  // 2002::/16 6to4: the embedded IPv4 decides
        if a[0] == 0x3F, a[1] == 0xFF, a[2] & 0xF0 == 0x00 { return false }  // 3fff::/20 documentation
        if a[0] == 0x5F, a[1] == 0x00 { return false }  // 5f00::/16 SRv6 segment identifiers
        if a[0] & 0xFE == 0xFC { return false }  // fc00::/7 unique local
        if a[0] == 0xFE, a[1] & 0xC0 == 0x80 || a[1] & 0xC0 == 0xC0 { return false }  // fe80::/10 link-local, fec0::/10 site-local
        if a[0] == 0xFF { return false }  // multicast
        return a[0] & 0xE0 == 0x20  // 2000::/3 is the global unicast space
    }

    static func isPublicIPv4(_ a: [UInt8]) -> Bool {
        guard a.count == 4 else { return false }
        switch (a[0], a[1]) {
        case (0, _), (10, _), (127, _): return false         // "this network", private, loopback
        case (100, 64...127): return false                    // carrier-grade NAT
        case (169, 254): return false                         // link-local (cloud metadata)
        case (172, 16...31): return false                     // private
        case (192, 168): return false                         // private
        case (192, 0) where a[2] == 0 || a[2] == 2: return false   // IETF protocol assignments (NAT64 discovery), TEST-NET-1
        case (192, 88) where a[2] == 99: return false         // 6to4 relay anycast (deprecated)
        case (198, 18...19): return false                     // benchmarking
        case (198, 51) where a[2] == 100, (203, 0) where a[2] == 113: return false  // TEST-NET-2, TEST-NET-3
        case (224...255, _): return false                     // multicast, reserved, broadcast
        default: return true
        }
    }
}
