# The browser test (tests/browser) drives Debian's Chromium with Playwright for Python
# (requirements-dev.txt). Playwright never downloads a browser here: `make browser` installs
# the distribution's package, only when it is missing, plus a font for legible screenshots.
BROWSER_PACKAGES := chromium fonts-dejavu-core

.PHONY: browser

browser:
	@if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -q .; then \
		echo "browser: $$(command -v chromium) ($$(chromium --version 2>/dev/null | head -n 1))"; \
		exit 0; \
	fi; \
	command -v apt-get >/dev/null 2>&1 || { \
		echo "browser: Chromium is missing and there is no apt-get: install Chromium so that" \
			"'chromium' is on PATH (or set CHROMIUM=/path/to/chromium for the tests)." >&2; \
		exit 1; }; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; \
	elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; \
	else \
		echo "browser: installing $(BROWSER_PACKAGES) needs root, and sudo is not here:" \
			"run 'apt-get install --no-install-recommends $(BROWSER_PACKAGES)' as root." >&2; \
		exit 1; \
	fi; \
	echo "browser: installing $(BROWSER_PACKAGES) with apt-get"; \
	$$SUDO apt-get update && \
	$$SUDO env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends $(BROWSER_PACKAGES)
