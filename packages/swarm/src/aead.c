// ChaCha20-Poly1305 (RFC 8439) sealed and opened in place, for the data
// link's records (aead.ts), through the OpenSSL that Node itself carries and
// exports to addons. node:crypto runs the same cipher but returns every
// output in a new buffer; here the output is the input's own bytes.
// Built by scripts/build-addon.mjs; without it aead.ts uses libsodium.
#include <limits.h>
#include <node_api.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#define KEY_BYTES 32
#define NONCE_BYTES 12
#define TAG_BYTES 16

// 1 when the tag was made (enc) or matched (!enc); body is then sealed or opened.
static int cipher (int enc, const unsigned char *key, const unsigned char *nonce,
                   const unsigned char *aad, size_t aad_len,
                   unsigned char *body, size_t len, unsigned char *tag) {
  if (aad_len > INT_MAX || len > INT_MAX) return 0;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx == NULL) return 0;
  int ok = 0;
  int n = 0;
  // ChaCha20-Poly1305 writes nothing at the end; a scratch buffer, not the bytes after body, takes it.
  unsigned char end[TAG_BYTES];
  if (EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, nonce, enc) != 1) goto done;
  if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_BYTES, tag) != 1) goto done;
  if (aad_len > 0 && EVP_CipherUpdate(ctx, NULL, &n, aad, (int) aad_len) != 1) goto done;
  if (len > 0 && EVP_CipherUpdate(ctx, body, &n, body, (int) len) != 1) goto done;
  if (EVP_CipherFinal_ex(ctx, end, &n) != 1) goto done;
  if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_BYTES, tag) != 1) goto done;
  ok = 1;
done:
  EVP_CIPHER_CTX_free(ctx);
  // A failure leaves errors queued on this thread, where Node's own OpenSSL calls would find them.
  if (!ok) ERR_clear_error();
  return ok;
}

// A Uint8Array's bytes, or NULL when the value is not one.
static unsigned char *bytes_of (napi_env env, napi_value value, size_t *len) {
  bool is = false;
  if (napi_is_typedarray(env, value, &is) != napi_ok || !is) return NULL;
  napi_typedarray_type type;
  void *data = NULL;
  if (napi_get_typedarray_info(env, value, &type, len, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) return NULL;
  // An empty array may have no storage at all; any non-null pointer does for 0 bytes.
  return data != NULL ? data : (unsigned char *) "";
}

// (key, nonce, aad, body, tag) -> boolean; throws on arguments of the wrong kind or size.
static napi_value run (napi_env env, napi_callback_info info, int enc) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  size_t len[5] = { 0 };
  unsigned char *buf[5];
  for (size_t i = 0; i < 5; i++) {
    buf[i] = i < argc ? bytes_of(env, argv[i], &len[i]) : NULL;
    if (buf[i] == NULL) {
      napi_throw_type_error(env, NULL, "expected five Uint8Arrays: key, nonce, aad, body, tag");
      return NULL;
    }
  }
  if (len[0] != KEY_BYTES || len[1] != NONCE_BYTES || len[4] != TAG_BYTES) {
    napi_throw_range_error(env, NULL, "key must be 32 bytes, nonce 12, tag 16");
    return NULL;
  }
  napi_value result;
  napi_get_boolean(env, cipher(enc, buf[0], buf[1], buf[2], len[2], buf[3], len[3], buf[4]), &result);
  return result;
}

static napi_value seal_record (napi_env env, napi_callback_info info) { return run(env, info, 1); }
static napi_value open_record (napi_env env, napi_callback_info info) { return run(env, info, 0); }

NAPI_MODULE_INIT () {
  napi_value fn;
  if (napi_create_function(env, "seal", NAPI_AUTO_LENGTH, seal_record, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "seal", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "open", NAPI_AUTO_LENGTH, open_record, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "open", fn) != napi_ok) return NULL;
  return exports;
}
