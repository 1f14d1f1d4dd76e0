# make demo   a migration on the local lab (BIND 9, Microsoft 365 emulator, Postfix) with the
#             collection's playbooks: migrate (plan, diff, apply, verify, test-send), then check
#             (JUnit + Markdown report); PATTERN=full|partial|legacy_forward for one domain
# make test   every test: ansible-test sanity, unit and integration tests (what .ci/run calls)
# make bench  benchmarks against a community.general.nsupdate loop
.PHONY: demo test bench sanity lint unit integration clean

demo:
	tests/run.sh demo $(if $(PATTERN),--pattern $(PATTERN))

test:
	tests/run.sh test

bench:
	tests/run.sh bench

sanity lint unit integration:
	tests/run.sh $@

clean:
	rm -rf build .venv tests/output demo-output
