// A tiny "pause" image, made here instead of pulled: the docker runtime's per-pod sandbox
// container only has to hold a network namespace, so its image is one static ELF binary that
// sleeps forever in a pause()/ppoll() loop (no libc, under 200 bytes), in a one-file tar that
// the engine imports (POST /images/create?fromSrc=-). No registry is needed, like the rest of
// the runtime. Like kube's pause it has no signal handlers, so as PID 1 it ignores SIGTERM:
// the runtime removes it with SIGKILL (force).

/** Machine code of `for (;;) pause();` per engine architecture (Docker's /version Arch). */
const CODE: Record<string, { machine: number; code: number[] }> = {
  // x86-64: mov eax, 34 (pause); syscall; jmp back
  amd64: { machine: 0x3e, code: [0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7] },
  // aarch64 (no pause syscall): x0..x3 = 0; x8 = 73 (ppoll, no fds, no timeout); svc #0; b back
  arm64: {
    machine: 0xb7,
    code: [0xd2800000, 0xd2800001, 0xd2800002, 0xd2800003, 0xd2800928, 0xd4000001, 0x17fffffa].flatMap((w) => [
      w & 0xff,
      (w >>> 8) & 0xff,
      (w >>> 16) & 0xff,
      (w >>> 24) & 0xff,
    ]),
  },
};

export const PAUSE_ARCHES = Object.keys(CODE);

/** aliases the engines report for the same architectures */
function normalizeArch(arch: string): string {
  const a = arch.toLowerCase();
  if (a === "x86_64" || a === "x86-64") return "amd64";
  if (a === "aarch64") return "arm64";
  return a;
}

/** A static ELF64 executable that pauses forever, for the given architecture. */
export function pauseElf(arch: string): Buffer {
  const spec = CODE[normalizeArch(arch)];
  if (!spec) throw new Error(`no built-in pause binary for architecture ${arch} (set the sandboxImage option)`);
  const base = 0x400000;
  const headers = 64 + 56;
  const size = headers + spec.code.length;
  const b = Buffer.alloc(size);
  // ELF header
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0); // magic, 64-bit, little endian, version 1, SysV
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(spec.machine, 18);
  b.writeUInt32LE(1, 20); // EV_CURRENT
  b.writeBigUInt64LE(BigInt(base + headers), 24); // entry
  b.writeBigUInt64LE(64n, 32); // program headers right after this header
  b.writeBigUInt64LE(0n, 40); // no section headers
  b.writeUInt32LE(0, 48); // flags
  b.writeUInt16LE(64, 52); // header size
  b.writeUInt16LE(56, 54); // program header size
  b.writeUInt16LE(1, 56); // one program header
  b.writeUInt16LE(0, 58); // section header size
  b.writeUInt16LE(0, 60); // no sections
  b.writeUInt16LE(0, 62); // no section names
  // one PT_LOAD mapping the whole file read+execute at base
  b.writeUInt32LE(1, 64); // PT_LOAD
  b.writeUInt32LE(5, 68); // R+X
  b.writeBigUInt64LE(0n, 72); // offset
  b.writeBigUInt64LE(BigInt(base), 80); // vaddr
  b.writeBigUInt64LE(BigInt(base), 88); // paddr
  b.writeBigUInt64LE(BigInt(size), 96); // filesz
  b.writeBigUInt64LE(BigInt(size), 104); // memsz
  b.writeBigUInt64LE(0x10000n, 112); // align (fits 4K and 64K pages)
  b.set(spec.code, headers);
  return b;
}

/** A ustar archive holding the given files (regular files only). */
export function tarArchive(files: { name: string; mode: number; data: Buffer }[], mtime = 0): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    const h = Buffer.alloc(512);
    const octal = (n: number, width: number) => n.toString(8).padStart(width - 1, "0") + "\0";
    h.write(f.name, 0, 100, "utf8");
    h.write(octal(f.mode, 8), 100, "ascii");
    h.write(octal(0, 8), 108, "ascii"); // uid
    h.write(octal(0, 8), 116, "ascii"); // gid
    h.write(octal(f.data.length, 12), 124, "ascii");
    h.write(octal(mtime, 12), 136, "ascii");
    h.write("        ", 148, "ascii"); // checksum placeholder
    h.write("0", 156, "ascii"); // regular file
    h.write("ustar\0", 257, "ascii");
    h.write("00", 263, "ascii");
    let sum = 0;
    for (const byte of h) sum += byte;
    h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "ascii");
    parts.push(h, f.data);
    const pad = (512 - (f.data.length % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** The pause image's root filesystem as a tar: /pause only. */
export function pauseImageTar(arch: string): Buffer {
  return tarArchive([{ name: "pause", mode: 0o755, data: pauseElf(arch) }]);
}
