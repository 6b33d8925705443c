#ifndef WMQ_COPENSSL_SHIM_H
#define WMQ_COPENSSL_SHIM_H
// libcrypto from libssl-dev: SHA-1 for Sec-WebSocket-Accept, HMAC-SHA-256 for
// keyed pseudonyms; later TLS key-log decryption of captures.
// The low-level SHA-256 calls KeyedHash uses are deprecated in OpenSSL 3, not removed.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#endif
