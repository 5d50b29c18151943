/** Binary identity objects (certificates, revocation lists) as text files: base64 between BEGIN/END lines, as PEM does. Pure. */

/** Wraps bytes as armored text under label ("AFSTEER NODE CERTIFICATE"). */
export function armor(label: string, bytes: Buffer): string {
  const b64 = bytes.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64.replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

/** The bytes inside armored text with label; throws naming what when the text is not that. */
export function dearmor(text: string, label: string, what: string): Buffer {
  const m = new RegExp(`^\\s*-----BEGIN ${label}-----\\n([A-Za-z0-9+/=\\n]*)-----END ${label}-----\\s*$`).exec(text);
  if (!m) throw new Error(`${what}: not an armored ${label.toLowerCase()}`);
  const b64 = m[1]!.replace(/\n/g, '');
  if (b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new Error(`${what}: bad base64`);
  return Buffer.from(b64, 'base64');
}
