// The key agent, as a real process on a real socket: keys kept and handed back, hostile frames
// refused without harm, the idle timeout, and repositories opened through it.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "base/error.h"
#include "helpers.h"
#include "agent/agent.h"
#include "repository/repository.h"

using namespace plakar;

namespace {

// An agent served by a child process; stopped (or reaped) on destruction.
struct AgentProcess {
	std::string socket;
	pid_t pid = -1;
	AgentProcess(const std::string &path, unsigned timeout = 30) : socket(path)
	{
		auto l = agent::Listener::listen(path);
		pid = fork();
		REQUIRE(pid >= 0);
		if (pid == 0) {
			l.serve(timeout);
			_exit(0);
		}
	}
	// Waits for the child; returns its exit status, or -1 if still running after ms.
	int wait_exit(int ms)
	{
		for (int i = 0; i < ms / 10; i++) {
			int st = 0;
			if (waitpid(pid, &st, WNOHANG) == pid) {
				pid = -1;
				return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
			}
			std::this_thread::sleep_for(std::chrono::milliseconds(10));
		}
		return -1;
	}
	~AgentProcess()
	{
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, nullptr, 0);
		}
	}
};

agent::RepoId id_of(uint8_t b)
{
	agent::RepoId id;
	id.fill(b);
	return id;
}

// Sends raw bytes on a fresh connection; returns what comes back before the agent closes.
Bytes raw_exchange(const std::string &path, const Bytes &out)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	sockaddr_un sa{};
	sa.sun_family = AF_UNIX;
	std::strcpy(sa.sun_path, path.c_str());
	REQUIRE(connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0);
	if (!out.empty())
		REQUIRE(write(fd, out.data(), out.size()) == ssize_t(out.size()));
	shutdown(fd, SHUT_WR);
	Bytes in(256);
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, in.data() + got, in.size() - got);
		if (n <= 0)
			break;
		got += size_t(n);
	}
	close(fd);
	in.resize(got);
	return in;
}

} // namespace

TEST_CASE("agent: keeps keys per repository and hands them back", "[agent]")
{
	test::TempDir d;
	AgentProcess a(d / "agent.sock");
	CHECK_FALSE(agent::fetch(a.socket, id_of(1)).has_value());
	crypto::SecureBytes k1(test::random_data(32, 1)), k2(test::random_data(32, 2));
	agent::offer(a.socket, id_of(1), k1);
	agent::offer(a.socket, id_of(2), k2);
	auto got = agent::fetch(a.socket, id_of(1));
	REQUIRE(got.has_value());
	CHECK(crypto::equal(got->view(), k1.view()));
	CHECK(crypto::equal(agent::fetch(a.socket, id_of(2))->view(), k2.view()));
	CHECK_FALSE(agent::fetch(a.socket, id_of(3)).has_value());
	// Nothing answers where there is no agent, and that is not an error for fetch.
	CHECK_FALSE(agent::fetch(d / "nothing.sock", id_of(1)).has_value());
	CHECK(test::code_of([&] { agent::stop(d / "nothing.sock"); }) == Code::NotFound);
	agent::stop(a.socket);
	CHECK(a.wait_exit(5000) == 0);
	CHECK_FALSE(std::filesystem::exists(a.socket)); // the socket goes with the agent
}

TEST_CASE("agent: hostile frames are refused and the agent lives on", "[agent]")
{
	test::TempDir d;
	AgentProcess a(d / "agent.sock");
	crypto::SecureBytes k(test::random_data(32, 5));
	agent::offer(a.socket, id_of(9), k);
	auto frame = [](uint8_t type, size_t len, size_t actual) {
		Bytes b = {'P', 'L', 'K', 'A', 1, type, uint8_t(len), uint8_t(len >> 8)};
		b.resize(8 + actual, 0x41);
		return b;
	};
	const Bytes refused = {'P', 'L', 'K', 'A', 1, 0x84, 0, 0};
	Bytes junk(22, 'G');
	CHECK(raw_exchange(a.socket, junk) == refused); 	CHECK(raw_exchange(a.socket, frame(1, 60000, 10)) == refused);              // oversized length
	CHECK(raw_exchange(a.socket, frame(1, 16, 5)) == refused);                  // truncated payload
	CHECK(raw_exchange(a.socket, frame(1, 15, 15)) == refused);                 // wrong size for GET
	CHECK(raw_exchange(a.socket, frame(2, 10, 10)) == refused);                 // wrong size for PUT
	CHECK(raw_exchange(a.socket, frame(77, 0, 0)) == refused);                  // unknown type
	Bytes bad_version = frame(1, 16, 16);
	bad_version[4] = 2;
	CHECK(raw_exchange(a.socket, bad_version) == refused);
	CHECK(raw_exchange(a.socket, {}) == refused); // connect and close
	// Still serving, key intact.
	CHECK(crypto::equal(agent::fetch(a.socket, id_of(9))->view(), k.view()));
	CHECK(a.wait_exit(50) == -1);
}

TEST_CASE("agent: exits after the idle timeout and removes its socket", "[agent]")
{
	test::TempDir d;
	AgentProcess a(d / "agent.sock", 1);
	agent::offer(a.socket, id_of(1), crypto::SecureBytes(test::random_data(32, 1)));
	CHECK(a.wait_exit(5000) == 0);
	CHECK_FALSE(std::filesystem::exists(a.socket));
	CHECK_FALSE(agent::fetch(a.socket, id_of(1)).has_value());
}

TEST_CASE("agent: a socket that exists already is refused", "[agent]")
{
	test::TempDir d;
	AgentProcess a(d / "agent.sock");
	CHECK(test::code_of([&] { agent::Listener::listen(d / "agent.sock"); }) == Code::Exists);
	std::string longpath(200, 'x');
	CHECK(test::code_of([&] { agent::Listener::listen("/tmp/" + longpath); }) == Code::Invalid);
}

TEST_CASE("agent: repositories open through it without a passphrase", "[agent]")
{
	test::TempDir d;
	AgentProcess a(d / "agent.sock");
	CreateOptions co;
	co.passphrase = "pw";
	co.kdf.log2_n = 10;
	Repository::create(d / "repo", co);
	Repository::create(d / "other", co);
	OpenOptions o;
	o.use_cache = false;
	o.agent = a.socket;
	// No key yet: a passphrase is needed, and a wrong one does not reach the agent.
	CHECK(test::code_of([&] { Repository::open(d / "repo", std::nullopt, o); }) == Code::Auth);
	CHECK(test::code_of([&] { Repository::open(d / "repo", std::string("wrong"), o); }) == Code::Auth);
	CHECK(test::code_of([&] { Repository::open(d / "repo", std::nullopt, o); }) == Code::Auth);
	// The right passphrase once, and the key is the agent's.
	Repository::open(d / "repo", std::string("pw"), o);
	auto r = Repository::open(d / "repo", std::nullopt, o);
	Bytes blob = test::random_data(1000, 3);
	r->put_blob(BlobType::Chunk, r->blob_id(blob), blob);
	r->flush();
	CHECK(Repository::open(d / "repo", std::nullopt, o)->get_blob(r->blob_id(blob), BlobType::Chunk) == blob);
	// Keys are per repository.
	CHECK(test::code_of([&] { Repository::open(d / "other", std::nullopt, o); }) == Code::Auth);
	// A wrong key filed under the repository's id is not used: the passphrase still works.
	auto cfg = Repository::open(d / "other", std::string("pw"), OpenOptions{})->config();
	agent::offer(a.socket, cfg.repo_id, crypto::SecureBytes(test::random_data(32, 8)));
	CHECK(test::code_of([&] { Repository::open(d / "other", std::nullopt, o); }) == Code::Auth);
	Repository::open(d / "other", std::string("pw"), o); // and puts the right key back
	Repository::open(d / "other", std::nullopt, o);
	// Without the agent option, the agent is not asked.
	OpenOptions plain;
	plain.use_cache = false;
	CHECK(test::code_of([&] { Repository::open(d / "repo", std::nullopt, plain); }) == Code::Auth);
}
