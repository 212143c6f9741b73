<?php
// The seed's PHP request. Guzzle is replaced by PHP's own stream functions:
// the same URL, headers and JSON body (Guzzle's 'json' option sends
// Content-Type: application/json).
$token = getenv('TOKEN');
$context = stream_context_create(['http' => [
    'method' => 'POST',
    'header' => "Authorization: Bearer " . $token . "\r\nContent-Type: application/json\r\n",
    'content' => json_encode(['instanceName' => 'Production Server']),
    'ignore_errors' => true,
]]);
$body = file_get_contents(getenv('BASE_URL') . '/api/v1/licensing/keys', false, $context);
preg_match('{HTTP/\S+ (\d{3})}', $http_response_header[0], $m);

$data = json_decode($body, true);
// $data['licenseKey'] — save this!
$types = [];
foreach ($data as $k => $v) {
    $types[$k] = gettype($v);
}
echo json_encode(['status' => (int)$m[1], 'data' => $data, 'types' => $types]), "\n";
