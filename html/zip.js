// vconv page: a tiny store-only ZIP writer for "Download all".
//
// Media files are compressed already, so the entries are stored (method 0):
// no deflate, just CRC-32, a local header before each file and the central
// directory at the end (PKWARE APPNOTE 6.3, sections 4.3 and 4.4). Names are
// UTF-8 (flag bit 11). No ZIP64: the whole archive must stay under 4 GiB.

const MAX = 0xffffffff;

let table;
function crcTable() {
  if (table) return table;
  table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

export function crc32(bytes, crc = 0) {
  const t = crcTable();
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

function dosTime(d) {
  const time = (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1);
  const date = ((Math.max(1980, d.getFullYear()) - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate();
  return { time, date };
}

// Names unique inside the archive: "a.mp4", "a (2).mp4", ...
function uniqueName(name, seen) {
  let n = name.replace(/[\\/]/g, '_') || 'file';
  for (let i = 2; seen.has(n.toLowerCase()); i++) n = name.replace(/(\.[^.]*)?$/, ` (${i})$1`);
  seen.add(n.toLowerCase());
  return n;
}

// entries: [{name, blob}] -> a Blob of type application/zip.
// onEntry(i) is called as each entry is read (for progress).
export async function makeZip(entries, onEntry = () => {}) {
  const enc = new TextEncoder();
  const { time, date } = dosTime(new Date());
  const parts = [], central = [];
  const seen = new Set();
  let offset = 0;
  for (const [i, e] of entries.entries()) {
    const name = enc.encode(uniqueName(e.name, seen));
    const data = new Uint8Array(await e.blob.arrayBuffer());
    const crc = crc32(data);
    const size = data.length;
    if (offset + size + 30 + name.length > MAX) throw new RangeError('the files are too large for one ZIP (4 GB)');
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true); // local file header
    local.setUint16(4, 20, true);         // version needed: 2.0
    local.setUint16(6, 0x0800, true);     // UTF-8 names
    local.setUint16(8, 0, true);          // stored
    local.setUint16(10, time, true);
    local.setUint16(12, date, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, size, true);
    local.setUint32(22, size, true);
    local.setUint16(26, name.length, true);
    local.setUint16(28, 0, true);
    const cd = new DataView(new ArrayBuffer(46));
    cd.setUint32(0, 0x02014b50, true);    // central directory header
    cd.setUint16(4, 0x0314, true);        // made by: Unix, 2.0
    cd.setUint16(6, 20, true);
    cd.setUint16(8, 0x0800, true);
    cd.setUint16(10, 0, true);
    cd.setUint16(12, time, true);
    cd.setUint16(14, date, true);
    cd.setUint32(16, crc, true);
    cd.setUint32(20, size, true);
    cd.setUint32(24, size, true);
    cd.setUint16(28, name.length, true);
    cd.setUint32(38, (0o100644 << 16) >>> 0, true); // -rw-r--r--
    cd.setUint32(42, offset, true);
    parts.push(local, name, data);
    central.push(cd, name);
    offset += 30 + name.length + size;
    onEntry(i);
  }
  const cdSize = central.reduce((n, p) => n + p.byteLength, 0);
  if (offset + cdSize + 22 > MAX) throw new RangeError('the files are too large for one ZIP (4 GB)');
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);     // end of central directory
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, cdSize, true);
  end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, end], { type: 'application/zip' });
}
