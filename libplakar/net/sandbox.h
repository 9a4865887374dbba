// The system-call filter of the server's network process (docs/protocol.md, "Privilege
// separation"): once it holds its listening socket, its channel to the store process and its
// Asio server, the process that parses every byte from the network needs only to accept,
// read, write, poll, map memory (memfds from the store process) and run threads. Everything
// else fails with EPERM (opening a file, creating a socket, binding, changing ids), and a few
// calls that only an exploit would make kill the process at once (exec, ptrace, mount, module
// and key calls).
#pragma once

namespace plakar::net {

// Sets PR_SET_NO_NEW_PRIVS and installs the filter on every thread of the calling process
// (and the threads it starts later). Throws Code::Error when the kernel refuses.
void sandbox_network_process();

} // namespace plakar::net
