/**
 * Whether an IP address is a public one: where a file from anyone on the internet may come from, as opposed
 * to the bridge's own machine, its cluster or its agency's network (loopback, private, shared CGNAT,
 * link-local with the cloud metadata services, and every other special-purpose range).
 */
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

/** IPv6's global unicast space (2000::/3); IANA allocates nothing public outside it. */
const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR("2000::/3");

/**
 * True for a global unicast address only. IPv4-mapped IPv6 (::ffff:127.0.0.1) counts as the IPv4 address it
 * carries; anything ipaddr.js names a special range (loopback, private, carrierGradeNat, linkLocal,
 * uniqueLocal, reserved, 6to4, teredo, rfc6052 and the rest) is not public, nor is IPv6 outside 2000::/3
 * (IPv4-compatible ::127.0.0.1 among others). Anything that is not an address is not public either.
 */
export function isPublicAddress(address: string): boolean {
  if (isIP(address) === 0) return false;
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.process(address);
  } catch {
    return false;
  }
  if (parsed.range() !== "unicast") return false;
  return parsed.kind() === "ipv4" || parsed.match(GLOBAL_UNICAST_V6);
}
