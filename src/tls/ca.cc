#include "tls/ca.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>

#include "tls/spiffe.h"

namespace pillion::tls {
namespace {

namespace fs = std::filesystem;

template <auto F>
struct Deleter {
  template <class T>
  void operator()(T* p) const {
    F(p);
  }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;

// Longest a CA or leaf may live: far beyond any sane use, short of time_t and ASN.1 limits.
constexpr std::chrono::seconds kMaxTtl = std::chrono::hours(24 * 365 * 100);

// The queued OpenSSL errors as one line (they name the failing operation, never key bytes).
std::string openssl_error() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty()) {
      out += "; ";
    }
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

bool fail(std::string& error, std::string message) {
  error = std::move(message);
  ERR_clear_error();
  return false;
}

bool fail_ssl(std::string& error, const std::string& what) {
  return fail(error, what + ": " + openssl_error());
}

KeyPtr generate_key(KeyType type) {
  if (type == KeyType::kRsa2048) {
    return KeyPtr(EVP_RSA_gen(2048));
  }
  return KeyPtr(EVP_EC_gen("P-256"));
}

bool set_random_serial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return false;
  }
  bytes[0] &= 0x7f;  // positive
  bytes[0] |= 0x40;  // and a full 16 bytes long
  BnPtr bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  return bn && BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) != nullptr;
}

bool set_validity(X509* cert, std::chrono::seconds backdate, std::chrono::seconds ttl) {
  time_t not_before = std::time(nullptr) - static_cast<time_t>(backdate.count());
  time_t not_after = not_before + static_cast<time_t>(ttl.count());
  return ASN1_TIME_set(X509_getm_notBefore(cert), not_before) != nullptr &&
         ASN1_TIME_set(X509_getm_notAfter(cert), not_after) != nullptr;
}

bool add_name_entry(X509_NAME* name, const char* field, std::string_view value) {
  return X509_NAME_add_entry_by_txt(name, field, MBSTRING_ASC,
                                    reinterpret_cast<const unsigned char*>(value.data()),
                                    static_cast<int>(value.size()), -1, 0) == 1;
}

bool add_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
  if (ext == nullptr) {
    return false;
  }
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1;
}

// subjectAltName built entry by entry (never from a config string, so a name cannot smuggle
// in extra entries).
bool add_subject_alt_names(X509* cert, const std::string& uri,
                           const std::vector<std::string>& dns_names) {
  NamesPtr names(GENERAL_NAMES_new());
  if (!names) {
    return false;
  }
  auto push = [&](int type, const std::string& value) {
    GENERAL_NAME* entry = GENERAL_NAME_new();
    ASN1_IA5STRING* text = ASN1_IA5STRING_new();
    if (entry == nullptr || text == nullptr ||
        ASN1_STRING_set(text, value.data(), static_cast<int>(value.size())) != 1) {
      GENERAL_NAME_free(entry);
      ASN1_IA5STRING_free(text);
      return false;
    }
    GENERAL_NAME_set0_value(entry, type, text);
    if (sk_GENERAL_NAME_push(names.get(), entry) <= 0) {
      GENERAL_NAME_free(entry);
      return false;
    }
    return true;
  };
  if (!push(GEN_URI, uri)) {
    return false;
  }
  for (const auto& name : dns_names) {
    if (!push(GEN_DNS, name)) {
      return false;
    }
  }
  return X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) == 1;
}

// The PEM text of a certificate or a private key (unencrypted PKCS#8).
std::optional<std::string> to_pem(X509* cert, EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) {
    return std::nullopt;
  }
  int ok = cert != nullptr
               ? PEM_write_bio_X509(bio.get(), cert)
               : PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  if (ok != 1) {
    return std::nullopt;
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  std::string out(data, static_cast<size_t>(size));
  OPENSSL_cleanse(data, static_cast<size_t>(size));
  return out;
}

// Creates `dir` (mode 0700, it will hold private keys) unless it exists.
bool ensure_directory(const fs::path& dir, std::string& error) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) {
    return true;
  }
  if (fs::exists(dir, ec)) {
    return fail(error, dir.string() + " exists and is not a directory");
  }
  fs::create_directories(dir, ec);
  if (ec) {
    return fail(error, "cannot create directory " + dir.string() + ": " + ec.message());
  }
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  return true;
}

// Writes through a temporary file in the same directory and renames it over `path`, so readers
// (and the proxy's file watcher) see the old file or the whole new one, never a partial one.
bool write_file_atomically(const fs::path& path, std::string_view data, mode_t mode,
                           std::string& error) {
  std::string temp =
      (path.parent_path() / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
  int fd = ::mkstemp(temp.data());  // created with mode 0600
  if (fd < 0) {
    return fail(error, "cannot write " + path.string() + ": " + std::strerror(errno));
  }
  auto give_up = [&](int err) {
    ::close(fd);
    ::unlink(temp.c_str());
    return fail(error, "cannot write " + path.string() + ": " + std::strerror(err));
  };
  if (::fchmod(fd, mode) != 0) {
    return give_up(errno);
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return give_up(n < 0 ? errno : EIO);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    return give_up(errno);
  }
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return fail(error, "cannot write " + path.string() + ": " + std::strerror(err));
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return fail(error, "cannot write " + path.string() + ": " + std::strerror(err));
  }
  return true;
}

std::string format_time(const ASN1_TIME* time) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || ASN1_TIME_print(bio.get(), time) != 1) {
    return "?";
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

bool check_ttl(std::chrono::seconds ttl, std::string& error) {
  if (ttl.count() <= 0) {
    return fail(error, "--ttl must be positive");
  }
  if (ttl > kMaxTtl) {
    return fail(error, "--ttl must be at most 876000h (100 years)");
  }
  return true;
}

// A DNS SAN: labels of letters, digits and '-', 1..63 bytes, total at most 253; the first label
// may be '*'. Returned lowercased.
std::optional<std::string> normalize_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) {
    return std::nullopt;
  }
  std::string out;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    std::string_view label =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    bool wildcard = start == 0 && label == "*" && dot != std::string_view::npos;
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      if (!wildcard) {
        return std::nullopt;
      }
    }
    for (char c : label) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                (c >= 'A' && c <= 'Z') || (wildcard && c == '*');
      if (!ok) {
        return std::nullopt;
      }
      out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    }
    if (dot == std::string_view::npos) {
      return out;
    }
    out.push_back('.');
    start = dot + 1;
  }
}

// The SPIFFE ID in a certificate's URI SANs (the first spiffe:// one), if any.
std::optional<SpiffeId> certificate_spiffe_id(X509* cert) {
  NamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) {
    return std::nullopt;
  }
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_URI) {
      continue;
    }
    const ASN1_STRING* uri = name->d.uniformResourceIdentifier;
    std::string_view text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                          static_cast<size_t>(ASN1_STRING_length(uri)));
    if (auto id = parse_spiffe_id(text)) {
      return id;
    }
  }
  return std::nullopt;
}

int no_password(char*, int, int, void*) {
  return 0;
}  // never prompt for a passphrase

struct LoadedCa {
  X509Ptr cert;
  KeyPtr key;
  std::string cert_pem;  // ca.pem as found on disk (copied to the workload's ca.pem)
};

bool load_ca(const fs::path& dir, LoadedCa& ca, std::string& error) {
  fs::path cert_path = dir / "ca.pem";
  fs::path key_path = dir / "ca.key";
  std::error_code ec;
  if (!fs::exists(cert_path, ec) || !fs::exists(key_path, ec)) {
    return fail(error, "no CA in " + dir.string() + " (" +
                           (fs::exists(cert_path, ec) ? key_path : cert_path).string() +
                           " is missing); create one with `pillion ca init --dir " + dir.string() +
                           "`");
  }
  BioPtr cert_bio(BIO_new_file(cert_path.c_str(), "r"));
  if (!cert_bio) {
    return fail(error, "cannot read " + cert_path.string() + ": " + std::strerror(errno));
  }
  ca.cert.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, no_password, nullptr));
  if (!ca.cert) {
    return fail_ssl(error, "cannot parse the CA certificate " + cert_path.string());
  }
  auto pem = to_pem(ca.cert.get(), nullptr);
  if (!pem) {
    return fail_ssl(error, "cannot encode the CA certificate");
  }
  ca.cert_pem = std::move(*pem);
  BioPtr key_bio(BIO_new_file(key_path.c_str(), "r"));
  if (!key_bio) {
    return fail(error, "cannot read " + key_path.string() + ": " + std::strerror(errno));
  }
  ca.key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_password, nullptr));
  if (!ca.key) {
    // The OpenSSL reason is omitted on purpose: only that the key did not load matters.
    return fail(error, "cannot load the CA private key " + key_path.string() +
                           " (not an unencrypted PEM private key)");
  }
  if (X509_check_private_key(ca.cert.get(), ca.key.get()) != 1) {
    return fail(error, key_path.string() + " does not match " + cert_path.string());
  }
  if (X509_check_ca(ca.cert.get()) == 0) {
    return fail(error, cert_path.string() + " is not a CA certificate");
  }
  if (X509_cmp_current_time(X509_get0_notAfter(ca.cert.get())) <= 0) {
    return fail(error, "the CA certificate " + cert_path.string() + " expired on " +
                           format_time(X509_get0_notAfter(ca.cert.get())));
  }
  return true;
}

}  // namespace

bool parse_key_type(std::string_view text, KeyType& out) {
  if (text == "ecdsa") {
    out = KeyType::kEcdsaP256;
    return true;
  }
  if (text == "rsa") {
    out = KeyType::kRsa2048;
    return true;
  }
  return false;
}

bool init_ca(const CaInitOptions& options, CaResult& result, std::string& error) {
  std::string why;
  if (!is_valid_trust_domain(options.trust_domain, &why)) {
    return fail(error, "invalid --trust-domain '" + options.trust_domain + "': " + why);
  }
  if (!check_ttl(options.ttl, error)) {
    return false;
  }
  if (options.dir.empty()) {
    return fail(error, "--dir is required");
  }
  fs::path dir(options.dir);
  fs::path cert_path = dir / "ca.pem";
  fs::path key_path = dir / "ca.key";
  std::error_code ec;
  if (!options.force && (fs::exists(cert_path, ec) || fs::exists(key_path, ec))) {
    return fail(error, dir.string() + " already holds a CA (" +
                           (fs::exists(cert_path, ec) ? cert_path : key_path).string() +
                           "); pass --force to replace it (every certificate it issued will "
                           "stop verifying)");
  }
  if (!ensure_directory(dir, error)) {
    return false;
  }
  KeyPtr key = generate_key(options.key_type);
  if (!key) {
    return fail_ssl(error, "cannot generate the CA key");
  }
  X509Ptr cert(X509_new());
  SpiffeId id{options.trust_domain, ""};
  if (!cert || X509_set_version(cert.get(), 2) != 1 || !set_random_serial(cert.get()) ||
      !set_validity(cert.get(), std::chrono::seconds(0), options.ttl) ||
      X509_set_pubkey(cert.get(), key.get()) != 1) {
    return fail_ssl(error, "cannot build the CA certificate");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  // O and CN are at most 64 bytes; a trust domain may be longer, so it goes in the SAN only.
  if (!add_name_entry(name, "O", "pillion") || !add_name_entry(name, "CN", "pillion CA") ||
      X509_set_issuer_name(cert.get(), name) != 1) {
    return fail_ssl(error, "cannot build the CA certificate name");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  if (!add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
      !add_extension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash") ||
      !add_subject_alt_names(cert.get(), id.text(), {})) {
    return fail_ssl(error, "cannot add the CA certificate extensions");
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) {
    return fail_ssl(error, "cannot sign the CA certificate");
  }
  auto cert_pem = to_pem(cert.get(), nullptr);
  auto key_pem = to_pem(nullptr, key.get());
  if (!cert_pem || !key_pem) {
    return fail_ssl(error, "cannot encode the CA");
  }
  // The key first: a crash in between leaves a key without a certificate, never a certificate
  // whose key is lost.
  bool ok = write_file_atomically(key_path, *key_pem, 0600, error) &&
            write_file_atomically(cert_path, *cert_pem, 0644, error);
  OPENSSL_cleanse(key_pem->data(), key_pem->size());
  if (!ok) {
    return false;
  }
  result.files = {cert_path.string(), key_path.string()};
  result.subject_id = id.text();
  result.not_after = format_time(X509_get0_notAfter(cert.get()));
  return true;
}

bool issue_certificate(const IssueOptions& options, CaResult& result, std::string& error) {
  std::string why;
  auto id = parse_spiffe_id(options.id, &why);
  if (!id) {
    return fail(error, "invalid --id '" + options.id + "': " + why);
  }
  if (id->path.empty()) {
    return fail(error, "invalid --id '" + options.id + "': a workload ID needs a path (spiffe://" +
                           id->trust_domain + "/...); the bare trust-domain ID belongs to the CA");
  }
  if (!check_ttl(options.ttl, error)) {
    return false;
  }
  if (options.backdate.count() < 0 || options.backdate > kMaxTtl) {
    return fail(error, "--backdate must be between 0s and 876000h");
  }
  std::vector<std::string> dns_names;
  for (const auto& name : options.dns_names) {
    auto normalized = normalize_dns_name(name);
    if (!normalized) {
      return fail(error, "invalid --dns '" + name + "': not a DNS name");
    }
    dns_names.push_back(std::move(*normalized));
  }
  if (options.ca_dir.empty() || options.out_dir.empty()) {
    return fail(error, "--dir and --out are required");
  }
  LoadedCa ca;
  if (!load_ca(options.ca_dir, ca, error)) {
    return false;
  }
  auto ca_id = certificate_spiffe_id(ca.cert.get());
  if (!ca_id) {
    return fail(error, "the CA certificate in " + options.ca_dir +
                           " has no spiffe:// URI SAN, so its trust domain is unknown");
  }
  if (ca_id->trust_domain != id->trust_domain) {
    return fail(error, "--id is in trust domain '" + id->trust_domain + "' but the CA in " +
                           options.ca_dir + " is for '" + ca_id->trust_domain + "'");
  }
  fs::path out(options.out_dir);
  if (!ensure_directory(out, error)) {
    return false;
  }

  KeyPtr key = generate_key(options.key_type);
  if (!key) {
    return fail_ssl(error, "cannot generate the workload key");
  }
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1 || !set_random_serial(cert.get()) ||
      !set_validity(cert.get(), options.backdate, options.ttl) ||
      X509_set_pubkey(cert.get(), key.get()) != 1 ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.cert.get())) != 1) {
    return fail_ssl(error, "cannot build the workload certificate");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!add_name_entry(name, "O", "pillion") ||
      (!dns_names.empty() && dns_names.front().size() <= 64 &&
       !add_name_entry(name, "CN", dns_names.front()))) {
    return fail_ssl(error, "cannot build the workload certificate name");
  }
  const char* key_usage = options.key_type == KeyType::kRsa2048
                              ? "critical,digitalSignature,keyEncipherment"
                              : "critical,digitalSignature";
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca.cert.get(), cert.get(), nullptr, nullptr, 0);
  if (!add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
      !add_extension(cert.get(), &ctx, NID_key_usage, key_usage) ||
      !add_extension(cert.get(), &ctx, NID_ext_key_usage, "serverAuth,clientAuth") ||
      !add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash") ||
      !add_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always") ||
      !add_subject_alt_names(cert.get(), id->text(), dns_names)) {
    return fail_ssl(error, "cannot add the workload certificate extensions");
  }
  if (X509_sign(cert.get(), ca.key.get(), EVP_sha256()) <= 0) {
    return fail_ssl(error, "cannot sign the workload certificate");
  }
  auto cert_pem = to_pem(cert.get(), nullptr);
  auto key_pem = to_pem(nullptr, key.get());
  if (!cert_pem || !key_pem) {
    return fail_ssl(error, "cannot encode the workload certificate");
  }
  fs::path cert_path = out / "cert.pem";
  fs::path key_path = out / "key.pem";
  fs::path ca_path = out / "ca.pem";
  bool ok = write_file_atomically(key_path, *key_pem, 0600, error) &&
            write_file_atomically(cert_path, *cert_pem, 0644, error) &&
            write_file_atomically(ca_path, ca.cert_pem, 0644, error);
  OPENSSL_cleanse(key_pem->data(), key_pem->size());
  if (!ok) {
    return false;
  }
  result.files = {cert_path.string(), key_path.string(), ca_path.string()};
  result.subject_id = id->text();
  result.not_after = format_time(X509_get0_notAfter(cert.get()));
  return true;
}

}  // namespace pillion::tls
