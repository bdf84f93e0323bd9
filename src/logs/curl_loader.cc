// libcurl, loaded on first use instead of linked: `pillion proxy` shares this binary, and
// linking libcurl maps its whole dependency chain (GnuTLS, Kerberos, LDAP, p11-kit, ...) into
// every sidecar, about 4 MiB of resident memory that the proxy never uses. These definitions
// stand in for the few libcurl functions the Elasticsearch output calls and forward to the
// real ones, resolved with dlopen/dlsym the first time any of them is called.
// curl.h's type-checking macros would rename the definitions below.
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <dlfcn.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace {

struct CurlApi {
  CURLcode (*global_init)(long);
  CURL* (*easy_init)();
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_perform)(CURL*);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  void (*easy_cleanup)(CURL*);
  const char* (*easy_strerror)(CURLcode);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);
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

// The option number tells the argument's type (curl.h: CURLOPTTYPE_*), as libcurl itself reads it.
extern "C" CURLcode curl_easy_setopt(CURL* handle, CURLoption option, ...) {
  va_list args;
  va_start(args, option);
  CURLcode result;
  if (option < CURLOPTTYPE_OBJECTPOINT) {
    result = api().easy_setopt(handle, option, va_arg(args, long));
  } else if (option < CURLOPTTYPE_OFF_T) {
    result = api().easy_setopt(handle, option, va_arg(args, void*));
  } else if (option < CURLOPTTYPE_BLOB) {
    result = api().easy_setopt(handle, option, va_arg(args, curl_off_t));
  } else {
    result = api().easy_setopt(handle, option, va_arg(args, void*));
  }
  va_end(args);
  return result;
}

// Every CURLINFO argument is a pointer.
extern "C" CURLcode curl_easy_getinfo(CURL* handle, CURLINFO info, ...) {
  va_list args;
  va_start(args, info);
  void* out = va_arg(args, void*);
  va_end(args);
  return api().easy_getinfo(handle, info, out);
}

extern "C" CURLcode curl_global_init(long flags) {
  return api().global_init(flags);
}
extern "C" CURL* curl_easy_init() {
  return api().easy_init();
}
extern "C" CURLcode curl_easy_perform(CURL* handle) {
  return api().easy_perform(handle);
}
extern "C" void curl_easy_cleanup(CURL* handle) {
  api().easy_cleanup(handle);
}
extern "C" const char* curl_easy_strerror(CURLcode code) {
  return api().easy_strerror(code);
}
extern "C" curl_slist* curl_slist_append(curl_slist* list, const char* text) {
  return api().slist_append(list, text);
}
extern "C" void curl_slist_free_all(curl_slist* list) {
  api().slist_free_all(list);
}
