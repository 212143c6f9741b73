// Verifies an EdDSA offline token with Node's crypto and the server's JWKS.
import crypto from 'node:crypto';

const [h, p, s] = process.env.TOKEN.split('.');
const header = JSON.parse(Buffer.from(h, 'base64url'));
if (header.alg !== 'EdDSA') { console.error('alg is not EdDSA'); process.exit(1); }
const jwks = JSON.parse(process.env.JWKS);
const jwk = jwks.keys.find((k) => k.kid === header.kid);
if (!jwk) { console.error('kid not in JWKS'); process.exit(1); }
const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
const ok = crypto.verify(null, Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'));
if (!ok) { console.error('bad signature'); process.exit(1); }
const claims = JSON.parse(Buffer.from(p, 'base64url'));
console.log(JSON.stringify({ plan: claims.plan, jti: claims.jti, sub: claims.sub }));
