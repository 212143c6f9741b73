package licensing

// Unexported names the external tests of this package use.
var (
	ErrCrossOrigin     = errCrossOrigin
	SignatureHeader    = signatureHeader
	ErrKeyLength       = errKeyLength
	ErrKeyNotHex       = errKeyNotHex
	ErrKeyChecksum     = errKeyChecksum
	KeyLength          = keyLength
	ErrShortPepper     = errShortPepper
	OrganizationHeader = organizationHeader
	NewHMACHasher      = newHMACHasher
)
