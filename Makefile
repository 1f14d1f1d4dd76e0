# make demo   a migration on the local lab (BIND 9, Microsoft 365 emulator, Postfix) with the
#             collection's playbooks: migrate (plan, diff, apply, verify, test-send), then check
#             (JUnit + Markdown report); PATTERN=full|partial|legacy_forward for one domain
# make lab    the same lab in the background: writes lab/inventory.yml and prints the commands
#             that run migrate, check, smtp_test and rollback against it; make lab-stop stops it
# make test   every test: ansible-test sanity, unit and integration tests (what .ci/run calls)
# make bench  benchmarks against a community.general.nsupdate loop
.PHONY: demo lab lab-stop test bench sanity lint unit integration clean

demo:
	tests/run.sh demo $(if $(PATTERN),--pattern $(PATTERN))

lab:
	tests/run.sh lab

lab-stop:
	tests/run.sh lab-stop

test:
	tests/run.sh test

bench:
	tests/run.sh bench

sanity lint unit integration:
	tests/run.sh $@

clean:
	tests/run.sh lab-stop
	rm -rf build .venv tests/output demo-output lab
