#!/bin/sh
# The seed's cURL request as people also type it: without the Content-Type
# header, so curl -d declares application/x-www-form-urlencoded.
# Prints the HTTP status on the last line.
curl -s -w '\n%{http_code}\n' -X POST "$BASE_URL/api/v1/licensing/keys" \
  -H "Authorization: Bearer $TOKEN" \
  -d '{
    "instanceName": "Production Server"
  }'
