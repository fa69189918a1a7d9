// The protocol's floor for per-artifact scans: the least a client can do to have clamd scan each
// file of a folder on its own request (one connection, FILDES, read the reply), N at a time.
// No hashing, no identification, no output but a count: clamd_bench.py times it next to
// `pssupervise analyze` to split our dispatch's own cost from what per-file requests cost clamd.
// Standalone on purpose (its FILDES message is written out again, not taken from
// src/engine/clamd): a floor must not share the code it measures.
// Usage: fildes_floor SOCKET FOLDER [CONNECTIONS]; prints "<files> files, <n> FOUND".
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "fildes_floor: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(2);
}

// One file, one connection: "zFILDES\0", then one byte carrying the descriptor.
bool scan(const std::string& socket_path, const std::string& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    die("open " + file);
  }
  int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  if (s < 0 || ::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    die("connect " + socket_path);
  }
  static constexpr char k_command[] = "zFILDES";
  if (::write(s, k_command, sizeof k_command) != sizeof k_command) {
    die("write");
  }
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (::sendmsg(s, &msg, MSG_NOSIGNAL) != 1) {
    die("sendmsg");
  }
  std::string reply;
  std::array<char, 4096> buf{};
  while (reply.find('\0') == std::string::npos) {
    ssize_t n = ::read(s, buf.data(), buf.size());
    if (n == 0) {
      std::fprintf(stderr, "fildes_floor: clamd closed the connection before answering %s\n",
                   file.c_str());
      std::exit(2);
    }
    if (n < 0) {
      die("read the reply for " + file);
    }
    reply.append(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(s);
  ::close(fd);
  return reply.find(" FOUND") != std::string::npos;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: fildes_floor SOCKET FOLDER [CONNECTIONS]\n");
    return 2;
  }
  std::string socket_path = argv[1];
  int connections = argc > 3 ? std::atoi(argv[3]) : 2;
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(argv[2])) {
    if (e.is_regular_file()) {
      files.push_back(e.path().string());
    }
  }
  std::ranges::sort(files); // the order `analyze` scans a folder in
  std::atomic<std::size_t> next{0};
  std::atomic<int> found{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, connections); ++i) {
    threads.emplace_back([&] {
      for (std::size_t k = next++; k < files.size(); k = next++) {
        if (scan(socket_path, files[k])) {
          ++found;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  std::printf("%zu files, %d FOUND\n", files.size(), found.load());
  return 0;
}
