#include "init/process.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

extern char** environ;

namespace pillion::init {
namespace {

// Owns one pipe end; closing twice is harmless.
class Fd {
 public:
  Fd() = default;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { close(); }
  int get() const { return fd_; }
  void reset(int fd) {
    close();
    fd_ = fd;
  }
  void close() {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read;
  Fd write;
};

// Both ends close on exec; the child's copies made by dup2 onto 0/1/2 do not.
void open_pipe(Pipe& p) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe2");
  }
  p.read.reset(fds[0]);
  p.write.reset(fds[1]);
}

// Writes stdin and drains stdout/stderr together, so neither side can block the other.
void pump(Fd& in, std::string_view input, Fd& out, Fd& err, ProcessResult& result) {
  if (input.empty()) {
    in.close();
  } else {
    fcntl(in.get(), F_SETFL, fcntl(in.get(), F_GETFL) | O_NONBLOCK);
  }
  char buffer[4096];
  while (in.get() >= 0 || out.get() >= 0 || err.get() >= 0) {
    pollfd fds[3] = {{in.get(), POLLOUT, 0}, {out.get(), POLLIN, 0}, {err.get(), POLLIN, 0}};
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw std::system_error(errno, std::generic_category(), "poll");
    }
    if (fds[0].revents != 0) {
      const ssize_t n = ::write(in.get(), input.data(), input.size());
      if (n > 0) {
        input.remove_prefix(static_cast<size_t>(n));
      }
      if (input.empty() || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        in.close();  // EOF for the child (or it stopped reading: EPIPE)
      }
    }
    struct Reader {
      const pollfd& polled;
      Fd& fd;
      std::string& sink;
    };
    for (Reader r : {Reader{fds[1], out, result.out}, Reader{fds[2], err, result.err}}) {
      if (r.polled.revents == 0) {
        continue;
      }
      const ssize_t n = ::read(r.fd.get(), buffer, sizeof buffer);
      if (n > 0) {
        r.sink.append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        r.fd.close();
      }
    }
  }
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, std::string_view input) {
  Pipe in, out, err;
  open_pipe(in);
  open_pipe(out);
  open_pipe(err);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out.write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.write.get(), STDERR_FILENO);

  std::vector<char*> args;
  for (const auto& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);

  ProcessResult result;
  pid_t pid = -1;
  result.spawn_errno = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (result.spawn_errno != 0) {
    return result;
  }
  // Only the child keeps these ends, so EOF arrives when it exits.
  in.read.close();
  out.write.close();
  err.write.close();
  pump(in.write, input, out.read, err.read, result);

  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      throw std::system_error(errno, std::generic_category(), "waitpid");
    }
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace pillion::init
