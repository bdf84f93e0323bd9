#include "tls/session_cache.h"

#include <openssl/ssl.h>

#include <list>
#include <unordered_map>
#include <utility>

namespace pillion::tls {

struct SessionCache::State {
  struct Entry {
    std::string key;
    SSL_SESSION* session = nullptr;  // one reference owned by the entry
    const SSL_CTX* context = nullptr;
  };

  explicit State(size_t capacity) : capacity(capacity == 0 ? 1 : capacity) {}
  ~State() { clear(); }

  void clear() {
    for (auto& entry : lru) {
      SSL_SESSION_free(entry.session);
    }
    lru.clear();
    index.clear();
  }

  void erase(const std::string& key) {
    auto it = index.find(key);
    if (it == index.end()) {
      return;
    }
    SSL_SESSION_free(it->second->session);
    lru.erase(it->second);
    index.erase(it);
  }

  // Takes over one reference to `session`.
  void put(const std::string& key, SSL_SESSION* session, const SSL_CTX* context) {
    auto it = index.find(key);
    if (it != index.end()) {
      SSL_SESSION_free(it->second->session);
      it->second->session = session;
      it->second->context = context;
      lru.splice(lru.begin(), lru, it->second);
    } else {
      lru.push_front(Entry{key, session, context});
      index.emplace(key, lru.begin());
      while (lru.size() > capacity) {
        auto& oldest = lru.back();
        SSL_SESSION_free(oldest.session);
        index.erase(oldest.key);
        lru.pop_back();
      }
    }
    ++stored;
  }

  size_t capacity;
  std::list<Entry> lru;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t stored = 0;
};

namespace {

// What apply() attaches to an SSL object: which cache, under which key.
struct Tag {
  std::weak_ptr<SessionCache::State> cache;
  std::string key;
};

void free_tag(void* /*parent*/, void* pointer, CRYPTO_EX_DATA* /*data*/, int /*index*/,
              long /*argl*/, void* /*argp*/) {
  delete static_cast<Tag*>(pointer);
}

int tag_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_tag);
  return index;
}

}  // namespace

SessionCache::SessionCache(size_t capacity) : state_(std::make_shared<State>(capacity)) {
  tag_index();  // allocate the index on this thread, before any handshake
}

SessionCache::~SessionCache() = default;

void SessionCache::apply(SSL* ssl, const std::string& key) {
  auto it = state_->index.find(key);
  if (it != state_->index.end()) {
    auto& entry = *it->second;
    if (entry.context == SSL_get_SSL_CTX(ssl) && SSL_SESSION_is_resumable(entry.session)) {
      // A copy: OpenSSL marks the session an SSL holds as not resumable when the connection
      // ends without close_notify (ssl_clear_bad_session), which must not spoil the cached one.
      if (SSL_SESSION* copy = SSL_SESSION_dup(entry.session)) {
        SSL_set_session(ssl, copy);  // takes its own reference
        SSL_SESSION_free(copy);
      }
      state_->lru.splice(state_->lru.begin(), state_->lru, it->second);
    } else {
      state_->erase(key);  // from a previous identity, or no longer usable
    }
  }
  auto* previous = static_cast<Tag*>(SSL_get_ex_data(ssl, tag_index()));
  delete previous;
  SSL_set_ex_data(ssl, tag_index(), new Tag{state_, key});
}

bool SessionCache::resumed(SSL* ssl) {
  bool reused = session_resumed(ssl);
  if (reused) {
    ++state_->hits;
  } else {
    ++state_->misses;
  }
  return reused;
}

void SessionCache::forget(const std::string& key) {
  state_->erase(key);
}

void SessionCache::clear() {
  state_->clear();
}

size_t SessionCache::size() const {
  return state_->lru.size();
}

size_t SessionCache::capacity() const {
  return state_->capacity;
}

uint64_t SessionCache::hits() const {
  return state_->hits;
}

uint64_t SessionCache::misses() const {
  return state_->misses;
}

uint64_t SessionCache::stored() const {
  return state_->stored;
}

int SessionCache::on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* tag = static_cast<Tag*>(SSL_get_ex_data(ssl, tag_index()));
  if (tag == nullptr) {
    return 0;
  }
  auto cache = tag->cache.lock();
  if (!cache || !SSL_SESSION_is_resumable(session)) {
    return 0;
  }
  // Stores a copy, for the same reason as in apply(); OpenSSL keeps and frees the original.
  SSL_SESSION* copy = SSL_SESSION_dup(session);
  if (copy == nullptr) {
    return 0;
  }
  cache->put(tag->key, copy, SSL_get_SSL_CTX(ssl));
  return 0;
}

bool session_resumed(SSL* ssl) {
  return SSL_session_reused(ssl) == 1;
}

}  // namespace pillion::tls
