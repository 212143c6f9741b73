// The seed's JavaScript request, with only the host and token changed.
const token = process.env.TOKEN;
const response = await fetch(`${process.env.BASE_URL}/api/v1/licensing/keys`, {
  method: 'POST',
  headers: {
    'Authorization': `Bearer ${token}`,
    'Content-Type': 'application/json',
  },
  body: JSON.stringify({
    instanceName: 'Production Server',
  }),
});

const data = await response.json();
// data.licenseKey — save this! It's shown only once at full length.
const types = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, v === null ? 'null' : typeof v]));
console.log(JSON.stringify({ status: response.status, data, types }));
