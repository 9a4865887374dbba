// Where the passphrase comes from, in this order: $PLAKAR_PASSPHRASE, the file given with
// -passphrase-file (one trailing newline stripped), else a no-echo prompt on /dev/tty.
// The bytes live in a Secret, wiped when it goes away.
#ifndef PLAKAR_CLI_PASSPHRASE_H
#define PLAKAR_CLI_PASSPHRASE_H

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace plakar::cli {

// Bytes that are wiped from memory on destruction. Move-only; its storage never moves while
// it grows within the initial capacity, and is wiped before it is released when it does.
class Secret {
public:
	Secret();
	~Secret();
	Secret(Secret &&other) noexcept;
	Secret &operator=(Secret &&other) noexcept;
	Secret(const Secret &) = delete;
	Secret &operator=(const Secret &) = delete;

	void push_back(char c);
	void pop_back();
	void clear();
	const char *data() const { return data_.get(); }
	std::size_t size() const { return size_; }
	bool empty() const { return size_ == 0; }
	char back() const { return data_[size_ - 1]; }
	bool operator==(const Secret &other) const;

private:
	std::unique_ptr<char[]> data_;
	std::size_t size_ = 0;
	std::size_t capacity_ = 0;
};

// The passphrase given without asking: $PLAKAR_PASSPHRASE, else the contents of
// passphrase_file when set. Throws Failure when the file cannot be read.
std::optional<Secret> supplied_passphrase(const std::optional<std::string> &passphrase_file);

// Asks on the controlling terminal with echo off; with confirm, asks twice and requires the
// same answer. Throws Failure when there is no terminal (no stdin prompt: a passphrase never
// comes from a pipe by accident), when reading fails, or when the answers differ.
Secret prompt_passphrase(bool confirm);

} // namespace plakar::cli

#endif
