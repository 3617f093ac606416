#!/usr/bin/perl
# Mutation storm through the real server: >= 200 mutated versions (bit
# flips, truncations, spliced headers, zeroed runs, ...) of small valid
# mp4, mkv, webm, wav, gif and png files, and a few of one file per
# demuxer added to the default list by issue 23 (fuzz/media/ and a DV
# frame: ivf mxf dv aiff caf w64 au wv tta ac3 eac3 dts truehd apng tiff
# j2k dpx exr ppm pgm pbm), uploaded 4 at a time with
# wait=1.  Every request is answered (200 or 4xx), no worker crashes, no
# [alert], nothing is left running, the store is empty after DELETEs.
#
# VCONV_STORM_N=<per source> changes the count (default 40 -> 240 files);
# VCONV_STORM_SEED=<n> the seed.  If VCONV_ASAN_MODULE points at an
# ASan-built module, it is loaded instead (with libasan preloaded).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(time sleep);
use VconvNginx;
use VconvMedia ();
use VconvHostile qw(:all);

my $dir = tempdir('vconv-hs-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $PER = $ENV{VCONV_STORM_N} // 40;
my $SEED = $ENV{VCONV_STORM_SEED} // 20240601;
my $PAR = 4;

# ---------------------------------------------------------------- sources
my %src;
$src{mp4} = VconvMedia::make_media($dir, 'mp4', size => '160x120', duration => 1,
                                   name => 's.mp4');
$src{mkv} = VconvMedia::make_media($dir, 'mkv', size => '160x120', duration => 1,
                                   name => 's.mkv');
$src{webm} = VconvMedia::make_media($dir, 'webm', size => '160x120', duration => 1,
                                    name => 's.webm');
$src{wav} = VconvMedia::make_media($dir, 'wav', duration => 1, name => 's.wav');
$src{gif} = "$dir/s.gif";
ff('-f', 'lavfi', '-i', 'testsrc2=size=96x64:rate=10:duration=1', $src{gif});
$src{png} = "$dir/s.png";
ff('-f', 'lavfi', '-i', 'testsrc2=size=96x64:rate=1:duration=1',
   '-frames:v', '1', $src{png});
# faststart mp4 and MPEG-TS: other parsing paths
$src{mp4fs} = "$dir/fs.mp4";
ff('-i', $src{mp4}, '-c', 'copy', '-movflags', '+faststart', $src{mp4fs});

my %fmt = (mp4 => 'mp4', mp4fs => 'mp4', mkv => 'mp4', webm => 'mp4',
           wav => 'mp3', gif => 'gif', png => 'jpg');
my %opts = (mp4 => '&height=96', mp4fs => '&height=96', mkv => '&height=96',
            webm => '&height=96', wav => '', gif => '', png => '');

# issue 23's wider default allow-list: one committed seed per demuxer
# (fuzz/media/, tools/vconv_samples.sh), fewer mutations each
# (VCONV_STORM_N_NEW, default 6); DV's one frame is made here
my $seeds = "$FindBin::Bin/../fuzz/media";
my %per = map { $_ => $PER } keys %src;
my $PER_NEW = $ENV{VCONV_STORM_N_NEW} // 6;
ff('-f', 'lavfi', '-i', 'testsrc2=size=720x480:rate=30000/1001',
   '-frames:v', '1', '-c:v', 'dvvideo', '-pix_fmt', 'yuv411p', '-f', 'dv',
   "$dir/s.dv");
for my $f ("$dir/s.dv", sort glob "$seeds/s.*") {
    my ($ext) = $f =~ /\.(\w+)$/;
    my $k = "new_$ext";
    $src{$k} = $f;
    $per{$k} = $PER_NEW;
    if ($ext =~ /^(ivf|mxf|dv|apng)$/) {
        ($fmt{$k}, $opts{$k}) = ('mp4', '&height=96');
    } elsif ($ext =~ /^(tif|j2k|dpx|exr|ppm|pgm|pbm)$/) {
        ($fmt{$k}, $opts{$k}) = ('jpg', '');
    } else {
        ($fmt{$k}, $opts{$k}) = ('mp3', '');
    }
}
cmp_ok(scalar(grep { /^new_/ } keys %src), '>=', 21,
       'a seed for each added demuxer that ffmpeg can write');

# the unmutated sources convert (else the storm proves nothing)
my %cfg = (
    workers => 2,
    http    => "    vconv_max_duration 60s;\n    vconv_stall_timeout 10s;\n"
             . "    vconv_max_resolution 1920x1080;\n",
);
# with the ASan module the core must run in the instrumented worker, not
# in a sandboxed child of the (uninstrumented) helper
$cfg{http} .= "    vconv_isolation thread;\n" if $ENV{VCONV_ASAN_MODULE};
my $ng;
{
    local $ENV{VCONV_MODULE} = $ENV{VCONV_ASAN_MODULE} if $ENV{VCONV_ASAN_MODULE};
    local $ENV{LD_PRELOAD} = $ENV{VCONV_ASAN_LIBASAN}
        // (`gcc -print-file-name=libasan.so 2>/dev/null` =~ s/\s+$//r)
        if $ENV{VCONV_ASAN_MODULE};
    local $ENV{ASAN_OPTIONS} = 'detect_leaks=0:abort_on_error=1'
        if $ENV{VCONV_ASAN_MODULE};
    $ng = VconvNginx->new(%cfg)->start;
}
if ($ENV{VCONV_ASAN_MODULE}) {
    my $wp = $ng->worker_pids->[0];
    my $maps = slurp("/proc/$wp/maps");
    like($maps, qr/libasan/, "ASan module loaded ($ENV{VCONV_ASAN_MODULE})");
}
my @workers0 = @{ $ng->worker_pids };

for my $k (sort keys %src) {
    my $r = $ng->post_file("/api/jobs?format=$fmt{$k}$opts{$k}&wait=1", $src{$k},
                           name => "src.$k", max_time => 60);
    is($r->{status}, 200, "unmutated $k converts to $fmt{$k}")
        or diag(substr($r->{body}, 0, 300));
}

# ---------------------------------------------------------------- storm
my @cases;
my $n = 0;
for my $k (sort keys %src) {
    my $data = slurp($src{$k});
    for my $i (1 .. $per{$k}) {
        my $seed = $SEED + $n++;
        my ($m, $what) = mutate($data, $seed);
        # a second mutation on a third of them
        if ($i % 3 == 0) {
            my ($m2, $w2) = mutate($m, $seed * 7 + 1);
            ($m, $what) = ($m2, "$what + $w2");
        }
        my $f = "$dir/m-$k-$i.bin";
        spew($f, $m);
        push @cases, { file => $f, kind => $k, what => $what, seed => $seed };
    }
}
# a few fixed hostile shapes too
for my $k (qw(mp4 mkv webm)) {
    my $d = slurp($src{$k});
    push @cases, { file => spew("$dir/x-$k-head.bin", substr($d, 0, 1024) x 64),
                   kind => $k, what => 'header repeated 64 times' };
    push @cases, { file => spew("$dir/x-$k-empty.bin", substr($d, 0, 1)),
                   kind => $k, what => 'one byte' };
    push @cases, { file => spew("$dir/x-$k-zero.bin", "\0" x length $d),
                   kind => $k, what => 'all zero' };
}
cmp_ok(scalar @cases, '>=', $ENV{VCONV_STORM_N} ? 1 : 200, scalar(@cases) . ' mutated files');

my (%by_status, @unanswered, @bad_status);
my @queue = @cases;
my @running;
my $t0 = time;
my $deadline = $t0 + 600;
while ((@queue || @running) && time < $deadline) {
    while (@queue && @running < $PAR) {
        my $c = shift @queue;
        $c->{p} = $ng->post_file("/api/jobs?format=$fmt{$c->{kind}}$opts{$c->{kind}}&wait=1",
                                 $c->{file}, name => "m.$c->{kind}",
                                 async => 1, max_time => 90);
        push @running, $c;
    }
    my @still;
    for my $c (@running) {
        if ($c->{p}->done) {
            my $r = $c->{p}->wait;
            delete $c->{p};
            $c->{status} = $r->{status};
            $c->{code} = ref $r->{json} eq 'HASH' && ref $r->{json}{error} eq 'HASH'
                       ? $r->{json}{error}{code} : '';
            $by_status{"$r->{status}" . ($c->{code} ? " $c->{code}" : '')}++;
            if ($r->{curl_exit} != 0 || !$r->{status}) {
                push @unanswered, $c;
            } elsif ($r->{status} != 200 && $r->{status} !~ /^4\d\d$/) {
                push @bad_status, $c;
            }
        } else {
            push @still, $c;
        }
    }
    @running = @still;
    sleep 0.02;
}
my $took = time - $t0;
$_->{p}->kill for grep { $_->{p} } @running;

is(scalar @queue + scalar @running, 0,
   sprintf('every upload was sent and ended (%.0f s)', $took));
is(scalar @unanswered, 0, 'every request was answered (curl exit 0, a status)')
    or diag(join "\n", map { "$_->{file}: $_->{what} (status "
                              . ($_->{status} // '?') . ')' } @unanswered[0 .. ($#unanswered < 9 ? $#unanswered : 9)]);
is(scalar @bad_status, 0, 'every answer is 200 (done) or 4xx (refused/failed)')
    or diag(join "\n", map { "$_->{file}: $_->{what} -> $_->{status} $_->{code}" }
                      @bad_status[0 .. ($#bad_status < 9 ? $#bad_status : 9)]);
diag('answers: ' . join ', ', map { "$_ x$by_status{$_}" } sort keys %by_status);

# the server is still healthy and the same workers run it
my $r = $ng->post_file('/api/jobs?format=mp4&height=96&wait=1', $src{mp4},
                       name => 'after.mp4', max_time => 60);
is($r->{status}, 200, 'a valid upload after the storm converts');
is_deeply([sort @{ $ng->worker_pids }], [sort @workers0],
          'no worker was replaced (no crash)');

# no job is stuck; all are final; DELETE empties the store
my @ids = @{ $ng->store_entries };
my @stuck;
for my $id (@ids) {
    my $j = $ng->get("/api/jobs/$id")->{json} // {};
    push @stuck, "$id " . ($j->{status} // '?') unless $VconvNginx::FINAL{ $j->{status} // '' };
}
is("@stuck", '', 'every job in the store is final (' . scalar(@ids) . ' jobs)');
my @not204 = grep { $ng->delete($_)->{status} != 204 } @ids;
is("@not204", '', 'DELETE of every job -> 204');
my $left;
VconvNginx::poll(5, sub { $left = $ng->store_entries; !@$left });
is_deeply($left, [], 'the store is empty after the DELETEs');

my $log = $ng->error_log;
my @crash = grep { /exited on signal|\[alert\]|\[emerg\]|AddressSanitizer|runtime error:/ }
            split /\n/, $log;
is(scalar @crash, 0, 'no crash, alert, emerg or sanitizer line in the error log')
    or diag(join "\n", @crash[0 .. ($#crash < 9 ? $#crash : 9)]);
$ng->stop;

# keep the failing inputs for the owners
if (@unanswered || @bad_status || @crash) {
    my $keep = "$FindBin::Bin/artifacts/hostile_storm";
    if (mkdir $keep or -d $keep) {
        for my $c (@unanswered, @bad_status) {
            my $b = (split m{/}, $c->{file})[-1];
            spew("$keep/$b", slurp($c->{file}));
        }
        diag("failing inputs copied to $keep");
    }
}

done_testing;
