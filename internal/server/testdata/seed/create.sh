#!/bin/sh
# The seed's cURL request, with only the host and token changed.
# Prints the HTTP status on the last line.
curl -s -w '\n%{http_code}\n' -X POST "$BASE_URL/api/v1/licensing/keys" \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" \
  -d '{
    "instanceName": "Production Server"
  }'
