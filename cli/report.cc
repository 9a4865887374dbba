#include "report.h"

#include <plakar/plakar.h>

#include <cstdio>
#include <string>

#include "format.h"

namespace plakar::cli {

int worst_exit(int a, int b) {
	auto rank = [](int code) {
		switch (code) {
		case kExitOk: return 0;
		case kExitPartial: return 1;
		default: return 2;
		}
	};
	return rank(a) >= rank(b) ? a : b;
}

std::string library_message(int code) {
	const char *message = plakar_error_last();
	if (message != nullptr && *message != '\0')
		return message;
	return plakar_error_string(code);
}

int exit_code_for(int code) { return code == PLAKAR_EPARTIAL ? kExitPartial : kExitFailure; }

void throw_library_error(int code, std::string_view context) {
	std::string message = library_message(code);
	if (!context.empty())
		message = std::string(context) + ": " + message;
	throw Failure(message, exit_code_for(code));
}

void report_error(std::string_view command, std::string_view message) {
	std::string line = "plakar: ";
	if (!command.empty()) {
		line += escape_message(command);
		line += ": ";
	}
	line += escape_message(message);
	line += '\n';
	std::fflush(stdout); // keep the order of stdout and stderr when both go to one place
	std::fputs(line.c_str(), stderr);
}

void report_item(std::string_view command, std::string_view path, std::string_view message) {
	if (path.empty() || message.find(path) != std::string_view::npos) {
		report_error(command, message);
		return;
	}
	std::string line(path);
	line += ": ";
	line += message;
	report_error(command, line);
}

} // namespace plakar::cli
