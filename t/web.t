#!/usr/bin/perl
# The web page (html/) in a real browser: Debian's chromium driven by
# playwright-core (t/web/e2e.mjs) against nginx with the module, run with
# conf.example itself (as `make run` runs it: its limit_req, its JSON
# error pages), serving html/ at / and the API under /api/.
# Screenshots and downloads go to t/artifacts/web/.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use POSIX ();
use Test::More;
use VconvNginx;

my $root = $VconvNginx::ROOT;
my $chromium = $ENV{CHROMIUM} || '/usr/bin/chromium';

plan skip_all => 'module not built (make build)'
    unless -f VconvNginx::module_path();
plan skip_all => "no $chromium (make deps installs Debian's chromium)"
    unless -x $chromium;
plan skip_all => 'no node (make deps)'
    unless system('node --version >/dev/null 2>&1') == 0;
plan skip_all => 'no playwright-core in t/web/node_modules (make deps)'
    unless -d "$root/t/web/node_modules/playwright-core";

my $art = "$root/t/artifacts/web";
make_path($art);
my $media = tempdir('vconv-web-XXXXXX', TMPDIR => 1, CLEANUP => 1);

# A short clip to convert, a longer and larger one to cancel, a portrait
# one smaller than 720p, a wide one for the phone.
sub ffmpeg {
    my @cmd = ('ffmpeg', '-nostdin', '-v', 'error', '-y', @_);
    system(@cmd) == 0 or BAIL_OUT("ffmpeg failed: @cmd");
}
ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=2',
       '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100:duration=2',
       '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
       '-c:a', 'aac', '-shortest', "$media/small.mp4");
ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=25:duration=20',
       '-f', 'lavfi', '-i', 'sine=frequency=330:sample_rate=44100:duration=20',
       '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
       '-c:a', 'aac', '-shortest', "$media/big.mp4");

ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=320x568:rate=25:duration=1',
       '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
       "$media/tall.mp4");
# wider than a phone: its preview must not widen the page
ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=960x540:rate=25:duration=1',
       '-f', 'lavfi', '-i', 'sine=frequency=550:sample_rate=44100:duration=1',
       '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
       '-c:a', 'aac', '-shortest', "$media/wide.mp4");

# conf.example with its paths in the test's prefix, HTTPS on a free port
my ($conf, $tls_port) = VconvNginx::example_conf(
    tempdir('vconv-tls-XXXXXX', TMPDIR => 1, CLEANUP => 1));
like($conf, qr/limit_req zone=/, 'conf.example limits uploads (the page must cope)');

my $ng = VconvNginx->new(
    html_root => "$root/html",
    workers   => 2,
    conf      => $conf,
)->start;
my $base = $ng->url('/');
note("nginx on $base, prefix " . $ng->prefix);

# Runs the browser test; its TAP lines become this file's tests.
my $pid = open(my $tap, '-|') // die "fork: $!";
if ($pid == 0) {
    open STDERR, '>&', \*STDOUT;
    no warnings 'exec';
    exec { 'node' } 'node', "$root/t/web/e2e.mjs", $base, $art, $media;
    print "not ok 1 - exec node: $!\n";
    POSIX::_exit(127);
}
my ($seen, $last_ok, $plan) = (0, 1, 0);
while (my $line = <$tap>) {
    chomp $line;
    if ($line =~ /^(not )?ok \d+\s*-?\s*(.*)$/) {
        $seen++;
        $last_ok = !$1;
        ok($last_ok, "browser: $2");
    } elsif ($line =~ /^1\.\.(\d+)/) {
        $plan = $1;
    } elsif ($line =~ /^#\s?(.*)$/) {
        $last_ok ? note($1) : diag($1);
    } elsif (length $line) {
        diag($line);
    }
}
close $tap;
my $exit = $? >> 8;
ok($seen > 0 && $plan == $seen, "browser test ran to its end ($seen of $plan)");
is($exit, 0, 'browser test exit status');

# the page's own 429 test trips conf.example's limit_req on purpose
$ng->assert_clean_log(undef, allow => qr/limiting requests/);
$ng->stop;

done_testing;
