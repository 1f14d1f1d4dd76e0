# make demo   the DNS migration patterns on the local lab (BIND 9), with plan and diff
# make test   every test: ansible-test sanity, unit and integration tests (what .ci/run calls)
# make bench  benchmarks against a community.general.nsupdate loop
.PHONY: demo test bench sanity unit integration clean

demo:
	tests/run.sh demo

test:
	tests/run.sh test

bench:
	tests/run.sh bench

sanity unit integration:
	tests/run.sh $@

clean:
	rm -rf build .venv tests/output
