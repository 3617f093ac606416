#!/usr/bin/perl
# tus clients against conf.example's /api/uploads/: tus-js-client (the npm
# package the page vendors) in Node, in small chunks, aborted and resumed
# from the server's offset; and the page in Chromium, its upload cut off
# (offline, then online; offline, then a reload and "Resume upload").
# Every job's output is checked with ffprobe.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Compare qw(compare);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use JSON::PP;
use POSIX ();
use Test::More;
use VconvNginx;

my $root = $VconvNginx::ROOT;
my $chromium = $ENV{CHROMIUM} || '/usr/bin/chromium';
my $mods = "$root/t/web/node_modules";

plan skip_all => 'module not built (make build)'
    unless -f VconvNginx::module_path();
plan skip_all => 'no node (make deps)'
    unless system('node --version >/dev/null 2>&1') == 0;
plan skip_all => 'no tus-js-client in t/web/node_modules (make web-deps)'
    unless -d "$mods/tus-js-client";

# the page serves the npm package's own browser build, unchanged
is(compare("$root/html/vendor/tus.min.js", "$mods/tus-js-client/dist/tus.min.js"), 0,
   'html/vendor/tus.min.js is the locked tus-js-client\'s dist/tus.min.js (make web-vendor)');

my $dir = tempdir('vconv-tus-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $art = "$root/t/artifacts/web";
make_path($art);
sub ffmpeg {
    my @cmd = ('ffmpeg', '-nostdin', '-v', 'error', '-y', @_);
    system(@cmd) == 0 or BAIL_OUT("ffmpeg failed: @cmd");
}
# streamable, 8 s; and a bigger one for the browser's throttled upload
ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=8',
       '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100:duration=8',
       '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
       '-c:a', 'aac', '-shortest', "$dir/clip.mkv");
ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25:duration=10',
       '-f', 'lavfi', '-i', 'sine=frequency=330:sample_rate=44100:duration=10',
       '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '0', '-pix_fmt', 'yuv420p',
       '-c:a', 'aac', '-shortest', "$dir/big.mp4");

# conf.example with its paths in the test's prefix, HTTPS on a free port
my ($conf, $tls_port) = VconvNginx::example_conf(
    tempdir('vconv-tls-XXXXXX', TMPDIR => 1, CLEANUP => 1));
like($conf, qr{location /api/uploads/ \{\s*vconv_tus;}, 'conf.example has the tus location');

my $ng = VconvNginx->new(html_root => "$root/html", workers => 2, conf => $conf)->start;

sub check_output {
    my ($id, $what, %want) = @_;
    my $job = $ng->wait_job($id, 120) // {};
    is($job->{status}, 'done', "$what: job done");
    my $d = $ng->download($id, "$dir/$id.mp4");
    is($d->{status}, 200, "$what: output downloaded") or return;
    my $p = VconvNginx::probe("$dir/$id.mp4");
    is($p && $p->{video} && $p->{video}{codec_name}, 'h264', "$what: output is H.264");
    is($p && $p->{video} && $p->{video}{height}, $want{height}, "$what: height $want{height}")
        if $want{height};
    ok($p && abs($p->{duration} - $want{duration}) < 0.2,
       "$what: output lasts $want{duration} s") or diag(explain $p);
    my $frames = VconvNginx::_run('ffprobe', '-v', 'error', '-count_frames',
        '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames',
        '-of', 'csv=p=0', "$dir/$id.mp4");
    $frames =~ s/\s+//g;
    is($frames, $want{duration} * 25, "$what: every frame ($frames)");
}

# --- tus-js-client in Node -----------------------------------------------------
{
    my $out = VconvNginx::_run('node', "$root/t/web/tus_node.mjs",
        $ng->url('/api/uploads/'), "$dir/clip.mkv", 65536, 3);
    my $r = eval { decode_json((grep { /^\{/ } split /\n/, $out)[-1]) } // {};
    ok(!$r->{error}, 'tus-js-client: no error') or diag($out);
    is($r->{offset_at_abort}, 3 * 65536, 'tus-js-client: aborted after 3 chunks of 64 KiB');
    is($r->{head_offset}, $r->{offset_at_abort}, 'HEAD after the abort: the server kept them');
    is($r->{first_patch_offset}, $r->{offset_at_abort},
       'the resumed client went on from the server\'s offset, not from 0');
    cmp_ok($r->{patches_after}, '>=', 2, "... in more small chunks ($r->{patches_after})");
    check_output($r->{id}, 'tus-js-client', height => 120, duration => 8) if $r->{id};
}

# --- the page in Chromium ----------------------------------------------------
SKIP: {
    skip "no $chromium", 1 unless -x $chromium;
    skip 'no playwright-core in t/web/node_modules', 1
        unless -d "$mods/playwright-core";
    my $pid = open(my $tap, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        chdir "$root/t/web";
        no warnings 'exec';
        exec { 'node' } 'node', "$root/t/web/tus_browser.mjs", $ng->url('/'),
            "$dir/big.mp4", $art;
        print "not ok 1 - exec node: $!\n";
        POSIX::_exit(127);
    }
    my %jobs;
    my ($seen, $plan) = (0, 0);
    while (my $line = <$tap>) {
        chomp $line;
        if ($line =~ /^(not )?ok \d+\s*-?\s*(.*)$/) {
            $seen++;
            ok(!$1, "browser: $2");
        } elsif ($line =~ /^1\.\.(\d+)/) {
            $plan = $1;
        } elsif ($line =~ /^# job (\d+) (\S+)/) {
            $jobs{$1} = $2;
        } elsif ($line =~ /^#\s?(.*)$/) {
            note($1);
        } elsif (length $line) {
            diag($line);
        }
    }
    close $tap;
    ok($seen && $seen == $plan, "browser test ran to its end ($seen of $plan)");
    for my $k (sort keys %jobs) {
        check_output($jobs{$k}, "page upload $k", duration => 10);
    }
}

$ng->assert_clean_log(undef, allow => qr/limiting requests/);
$ng->stop;
done_testing;
