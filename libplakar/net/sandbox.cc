#include "net/sandbox.h"

#include <seccomp.h>
#include <sys/prctl.h>

#include <cerrno>
#include <memory>

#include "base/error.h"

namespace plakar::net {

void sandbox_network_process()
{
	if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		fail_errno("server: no_new_privs", errno);
	std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(SCMP_ACT_ERRNO(EPERM)), seccomp_release);
	if (!ctx)
		fail(Code::Error, "server: seccomp_init failed");
	// What the network process was seen to call (strace of push, pull, check, gc, TLS), and
	// what its libraries may call on other paths (errors, exits, signals, timers).
	static const int allowed[] = {
	    SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64), SCMP_SYS(pwrite64),
	    SCMP_SYS(close), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(lseek), SCMP_SYS(ftruncate), SCMP_SYS(fcntl),
	    SCMP_SYS(dup), SCMP_SYS(ioctl), SCMP_SYS(memfd_create), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect),
	    SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(brk), SCMP_SYS(accept), SCMP_SYS(accept4),
	    SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(setsockopt), SCMP_SYS(getsockopt), SCMP_SYS(shutdown),
	    SCMP_SYS(sendmsg), SCMP_SYS(recvmsg), SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(epoll_create1),
	    SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(eventfd2), SCMP_SYS(timerfd_create),
	    SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime), SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(futex),
	    SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(exit),
	    SCMP_SYS(exit_group), SCMP_SYS(gettid), SCMP_SYS(getpid), SCMP_SYS(getppid), SCMP_SYS(getuid),
	    SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(tgkill), SCMP_SYS(rt_sigprocmask),
	    SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack), SCMP_SYS(restart_syscall),
	    SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday),
	    SCMP_SYS(getrandom), SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity), SCMP_SYS(membarrier),
	    SCMP_SYS(getrusage),
	};
	for (int sys : allowed)
		if (seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, sys, 0) != 0)
			fail(Code::Error, "server: seccomp rule refused");
	static const int fatal[] = {SCMP_SYS(execve),      SCMP_SYS(execveat),        SCMP_SYS(ptrace),
	                            SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev), SCMP_SYS(mount),
	                            SCMP_SYS(umount2),     SCMP_SYS(init_module),     SCMP_SYS(finit_module),
	                            SCMP_SYS(add_key),     SCMP_SYS(request_key),     SCMP_SYS(keyctl),
	                            SCMP_SYS(bpf),         SCMP_SYS(userfaultfd),     SCMP_SYS(perf_event_open)};
	for (int sys : fatal)
		if (seccomp_rule_add(ctx.get(), SCMP_ACT_KILL_PROCESS, sys, 0) != 0)
			fail(Code::Error, "server: seccomp rule refused");
	// Every thread of the process, those already started included.
	if (seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1) != 0)
		fail(Code::Error, "server: seccomp cannot synchronize threads");
	if (int rc = seccomp_load(ctx.get()); rc != 0)
		fail(Code::Error, std::string("server: cannot install the system-call filter (") + std::to_string(-rc) + ")");
}

} // namespace plakar::net
