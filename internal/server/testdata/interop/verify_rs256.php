<?php
// How an existing PHP verifier checks an offline token: alg must be RS256,
// iss must match, and openssl_verify must accept the signature.
$jwt = getenv('TOKEN');
$pem = file_get_contents(getenv('PUBKEY_PEM'));
$parts = explode('.', $jwt);
if (count($parts) !== 3) { fwrite(STDERR, "not a JWT\n"); exit(1); }
[$h, $p, $s] = $parts;
$b64 = function ($x) {
    return base64_decode(strtr($x, '-_', '+/') . str_repeat('=', (4 - strlen($x) % 4) % 4));
};
$header = json_decode($b64($h), true);
$claims = json_decode($b64($p), true);
if (($header['alg'] ?? '') !== 'RS256') { fwrite(STDERR, "alg is not RS256\n"); exit(1); }
if (($claims['iss'] ?? '') !== getenv('ISSUER')) { fwrite(STDERR, "issuer mismatch\n"); exit(1); }
if (openssl_verify("$h.$p", $b64($s), $pem, OPENSSL_ALGO_SHA256) !== 1) { fwrite(STDERR, "bad signature\n"); exit(1); }
echo json_encode(['plan' => $claims['plan'], 'jti' => $claims['jti'], 'sub' => $claims['sub']]), "\n";
