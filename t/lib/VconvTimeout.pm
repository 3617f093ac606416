package VconvTimeout;

# Loaded into every test file by `make test` (PERL5OPT): a test that runs
# longer than VCONV_TEST_TIMEOUT seconds (default 600) fails with its name
# instead of hanging the run.  Its END blocks still stop its nginx.

use strict;
use warnings;

my $limit = $ENV{VCONV_TEST_TIMEOUT} || 600;

# PERL5OPT reaches prove itself too: only the test files get a deadline
return 1 if $0 =~ m{(?:^|/)prove$};

$SIG{ALRM} = sub {
    print STDERR "# $0: timed out after $limit s\n";
    die "$0: timed out after $limit s\n";
};

alarm $limit;

1;
