#ifndef WMQ_COPENSSL_SHIM_H
#define WMQ_COPENSSL_SHIM_H
// libcrypto from libssl-dev: SHA-1 for Sec-WebSocket-Accept, HMAC-SHA-256 for
// keyed pseudonyms; later TLS key-log decryption of captures.
#include <openssl/sha.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#endif
