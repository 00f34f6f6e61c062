// Authentication. For now one identity: the admin bearer token (ADMIN_TOKEN). Tokens
// are compared as SHA-256 digests in constant time, so neither timing nor length
// leaks. Users, service accounts, nodes and RBAC come with the kubectl/RBAC issue.

const encoder = new TextEncoder();

async function digest(s: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", encoder.encode(s));
}

function timingSafeEqual(a: ArrayBuffer, b: ArrayBuffer): boolean {
  const subtle = crypto.subtle as SubtleCrypto & { timingSafeEqual?: (a: ArrayBuffer, b: ArrayBuffer) => boolean };
  if (typeof subtle.timingSafeEqual === "function") return subtle.timingSafeEqual(a, b);
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  let d = x.length ^ y.length;
  for (let i = 0; i < x.length && i < y.length; i++) d |= x[i] ^ y[i];
  return d === 0;
}

/** True if the Authorization header carries the admin token. No configured token: nobody. */
export async function checkBearer(header: string | undefined, adminToken: string | undefined): Promise<boolean> {
  if (!adminToken || !header) return false;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) return false;
  return timingSafeEqual(await digest(m[1]), await digest(adminToken));
}
