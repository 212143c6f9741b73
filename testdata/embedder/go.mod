module example.com/embedder

go 1.26.0

require github.com/licensekit/licensing v0.0.0

require (
	github.com/google/uuid v1.6.0 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/licensekit/licensing => ../..
