<?php
// Plays the seed system's self-hosted client (Storno's license validation
// service and JWT decoder) the way it talks to its vendor: JSON over HTTP
// with PHP streams, the instance URL sent verbatim from its FRONTEND_URL
// setting (often without a scheme), and offline tokens verified with
// openssl_verify against the vendor's PEM public key.
//
// MODE=validate: POST /validate, print {"status": N, "body": {...}}.
// MODE=token:    fetch the PEM, verify TOKEN, print its claims.
$base = rtrim(getenv('BASE_URL'), '/') . '/api/v1/licensing';

function call(string $method, string $url, ?array $json): array {
    $headers = "Accept: application/json\r\n";
    $content = '';
    if ($json !== null) {
        $headers .= "Content-Type: application/json\r\n";
        $content = json_encode($json, JSON_UNESCAPED_SLASHES);
    }
    $ctx = stream_context_create(['http' => [
        'method' => $method, 'header' => $headers, 'content' => $content,
        'ignore_errors' => true, 'timeout' => 10,
    ]]);
    $body = file_get_contents($url, false, $ctx);
    $status = 0;
    foreach ($http_response_header ?? [] as $h) {
        if (preg_match('#^HTTP/\S+ (\d{3})#', $h, $m)) { $status = (int)$m[1]; }
    }
    return [$status, $body];
}

$mode = getenv('MODE');
if ($mode === 'validate') {
    $payload = ['licenseKey' => getenv('LICENSE_KEY')];
    if (getenv('LICENSE_KEY') === false || getenv('LICENSE_KEY') === '') { $payload = []; }
    $payload += [
        'instanceName' => 'Storno self-hosted',
        'instanceUrl' => getenv('FRONTEND_URL'),
        'metrics' => ['orgCount' => 2, 'userCount' => 5, 'companyCount' => 3, 'invoicesThisMonth' => 120],
    ];
    [$status, $body] = call('POST', "$base/validate", $payload);
    echo json_encode(['status' => $status, 'body' => json_decode($body, true)], JSON_UNESCAPED_SLASHES), "\n";
    exit(0);
}
if ($mode === 'token') {
    [$status, $pem] = call('GET', "$base/public-keys.pem", null);
    if ($status !== 200) { fwrite(STDERR, "public key: HTTP $status\n"); exit(1); }
    $key = openssl_pkey_get_public($pem); // the first block: the RSA key
    if ($key === false) { fwrite(STDERR, "not a PEM public key\n"); exit(1); }
    $parts = explode('.', getenv('TOKEN'));
    if (count($parts) !== 3) { fwrite(STDERR, "not a JWT\n"); exit(1); }
    [$h, $p, $s] = $parts;
    $b64 = fn($x) => base64_decode(strtr($x, '-_', '+/') . str_repeat('=', (4 - strlen($x) % 4) % 4));
    $header = json_decode($b64($h), true);
    $claims = json_decode($b64($p), true);
    if (($header['alg'] ?? '') !== 'RS256') { fwrite(STDERR, "alg is not RS256\n"); exit(1); }
    if (openssl_verify("$h.$p", $b64($s), $key, OPENSSL_ALGO_SHA256) !== 1) { fwrite(STDERR, "bad signature\n"); exit(1); }
    if (($claims['exp'] ?? 0) <= time()) { fwrite(STDERR, "expired\n"); exit(1); }
    echo json_encode($claims, JSON_UNESCAPED_SLASHES), "\n";
    exit(0);
}
fwrite(STDERR, "MODE must be validate or token\n");
exit(2);
