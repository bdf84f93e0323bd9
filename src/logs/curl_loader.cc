// libcurl, loaded on first use instead of linked: `pillion proxy` shares this binary, and
// linking libcurl maps its whole dependency chain (GnuTLS, Kerberos, LDAP, p11-kit, ...) into
// every sidecar, about 4 MiB of resident memory that the proxy never uses. These definitions
// stand in for the few libcurl functions the Elasticsearch output calls and forward to the
// real ones, resolved with dlopen/dlsym the first time any of them is called.
//
// curl.h is deliberately not included here: its prototypes take enums before `...`, and
// va_start after an enum parameter is undefined behaviour in C++. The C ABI is the same with
// int (CURLoption, CURLINFO, CURLcode are int-sized enums; handles are opaque pointers).
#include <dlfcn.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace {

// From curl.h: the option number encodes the argument's type (CURLOPTTYPE_*).
constexpr int kObjectPointOptions = 10000;
constexpr int kOffTOptions = 30000;
constexpr int kBlobOptions = 40000;

struct CurlApi {
  int (*global_init)(long);
  void* (*easy_init)();
  int (*easy_setopt)(void*, int, ...);
  int (*easy_perform)(void*);
  int (*easy_getinfo)(void*, int, ...);
  void (*easy_cleanup)(void*);
  const char* (*easy_strerror)(int);
  void* (*slist_append)(void*, const char*);
  void (*slist_free_all)(void*);
};

template <typename Function>
void resolve(void* library, const char* name, Function& function) {
  function = reinterpret_cast<Function>(dlsym(library, name));
  if (function == nullptr) {
    std::fprintf(stderr, "pillion logs: libcurl lacks %s\n", name);
    std::abort();
  }
}

const CurlApi& api() {
  static CurlApi loaded;
  static std::once_flag once;
  std::call_once(once, [] {
    void* library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      std::fprintf(
          stderr,
          "pillion logs: the Elasticsearch output needs libcurl (Debian package libcurl4): "
          "%s\n",
          dlerror());
      std::exit(1);
    }
    resolve(library, "curl_global_init", loaded.global_init);
    resolve(library, "curl_easy_init", loaded.easy_init);
    resolve(library, "curl_easy_setopt", loaded.easy_setopt);
    resolve(library, "curl_easy_perform", loaded.easy_perform);
    resolve(library, "curl_easy_getinfo", loaded.easy_getinfo);
    resolve(library, "curl_easy_cleanup", loaded.easy_cleanup);
    resolve(library, "curl_easy_strerror", loaded.easy_strerror);
    resolve(library, "curl_slist_append", loaded.slist_append);
    resolve(library, "curl_slist_free_all", loaded.slist_free_all);
  });
  return loaded;
}

}  // namespace

extern "C" int curl_easy_setopt(void* handle, int option, ...) {
  va_list args;
  va_start(args, option);
  int result;
  if (option < kObjectPointOptions) {
    result = api().easy_setopt(handle, option, va_arg(args, long));
  } else if (option < kOffTOptions) {
    result = api().easy_setopt(handle, option, va_arg(args, void*));
  } else if (option < kBlobOptions) {
    result = api().easy_setopt(handle, option, va_arg(args, int64_t));  // curl_off_t
  } else {
    result = api().easy_setopt(handle, option, va_arg(args, void*));
  }
  va_end(args);
  return result;
}

// Every CURLINFO argument is a pointer.
extern "C" int curl_easy_getinfo(void* handle, int info, ...) {
  va_list args;
  va_start(args, info);
  void* out = va_arg(args, void*);
  va_end(args);
  return api().easy_getinfo(handle, info, out);
}

extern "C" int curl_global_init(long flags) {
  return api().global_init(flags);
}
extern "C" void* curl_easy_init() {
  return api().easy_init();
}
extern "C" int curl_easy_perform(void* handle) {
  return api().easy_perform(handle);
}
extern "C" void curl_easy_cleanup(void* handle) {
  api().easy_cleanup(handle);
}
extern "C" const char* curl_easy_strerror(int code) {
  return api().easy_strerror(code);
}
extern "C" void* curl_slist_append(void* list, const char* text) {
  return api().slist_append(list, text);
}
extern "C" void curl_slist_free_all(void* list) {
  api().slist_free_all(list);
}
