#!/usr/bin/perl
# The scheduler gives the slot back while the reader starves (issue 11):
# with vconv_max_running 1, a streaming upload that sends its first
# megabytes and then stalls, but for a byte every 0.5 s (too few to
# convert anything, well within the stall timeout), lets a normal job
# submitted meanwhile run and finish; then it resumes and converts every
# frame.  Both isolation modes.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time sleep);
use VconvNginx;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $mp4 = VconvNginx::make_media($dir, 'mp4');

# Matroska streams from its first bytes; 30 s at 25 fps: 750 frames
my $mkv = "$dir/stream.mkv";
VconvNginx::_run('ffmpeg', '-nostdin', '-v', 'error', '-y', '-f', 'lavfi',
    '-i', 'testsrc2=size=640x480:rate=25:duration=30', '-f', 'lavfi',
    '-i', 'sine=frequency=440:sample_rate=44100:duration=30',
    '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '64k', '-shortest', $mkv);
my $data = VconvNginx::_slurp($mkv);
my $head = int(length($data) * 0.4);
cmp_ok($head, '>', 1024 * 1024, 'the first part sent is over 1 MiB');

# ms since the epoch from the JSON's "started" or "finished" (with ms)
sub time_ms {
    my ($j, $k) = @_;
    my $v = $j->{$k} // return undef;
    my ($frac) = $v =~ /\.(\d{3})Z$/ or return undef;
    return VconvNginx::ts($v) * 1000 + $frac;
}

for my $iso (qw(process thread)) {
    my $ng = VconvNginx->new(
        workers => 2,
        http => "    vconv_isolation $iso;\n    vconv_max_running 1;\n",
    )->start;

    my $s = $ng->raw_upload('/api/jobs?format=mp4&height=240', $data, $head,
                            name => 'stalls.mkv');

    my ($sid, $sj);
    ok(VconvNginx::poll(30, sub {
        my @e = @{ $ng->store_entries };
        $sid = $e[0] if @e == 1;
        return 0 unless $sid;
        $sj = $ng->get("/api/jobs/$sid")->{json} // {};
        return ($sj->{status} // '') eq 'running' && $sj->{progress} > 0;
    }), "$iso: the stalling upload's job converts");

    # submitted while the first one holds the only slot
    my $n = $ng->post_file('/api/jobs?format=mp4&height=96', $mp4,
                           name => 'normal.mp4');
    is($n->{status}, 202, "$iso: the normal upload -> 202");
    my $nid = $n->{json} ? $n->{json}{id} : '';

    # meanwhile the upload dribbles: a byte every 0.5 s, too few for a
    # packet, keeps the stall timeout away but converts nothing.  The
    # wait is long: on a loaded machine a nice 10 job crawls.
    my ($sent, $nj) = ($head, {});
    VconvNginx::poll(180, sub {
        print $s substr($data, $sent++, 1);
        $nj = $ng->get("/api/jobs/$nid")->{json} // {};
        return 1 if $VconvNginx::FINAL{ $nj->{status} // '' };
        sleep 0.5;
        return 0;
    });
    my $resumed = time;
    is($nj->{status}, 'done',
       "$iso: the normal job is done while the first one dribbles");

    $sj = $ng->get("/api/jobs/$sid")->{json} // {};
    is($sj->{status}, 'running', "$iso: the dribbling job still runs");
    cmp_ok($sent - $head, '<', 400, "$iso: under 400 bytes dribbled")
        or diag($sent - $head);

    like($ng->error_log, qr/the job waits for upload bytes, its slot goes/,
         "$iso: the log says the slot was given back");

    # the rest of the upload: the job takes its slot back and ends well
    print $s substr($data, $sent);
    my $answer = '';
    my $deadline = time + 240;
    while (time < $deadline && $answer !~ /\r\n\r\n.*\}/s) {
        my $buf;
        my $got = sysread($s, $buf, 4096);
        last unless $got;
        $answer .= $buf;
    }
    close $s;
    like($answer, qr{^HTTP/1\.1 202 }, "$iso: the stalled upload -> 202");

    $sj = $ng->wait_job($sid, 300) // {};
    is($sj->{status}, 'done', "$iso: the stalled job is done");
    cmp_ok(time_ms($sj, 'finished') // 0, '>=', int($resumed * 1000),
           "$iso: it finished after its upload resumed");
    like($ng->error_log, qr/the job converts again and takes a slot back/,
         "$iso: the log says it took a slot again");
    $ng->download($sid, "$dir/out-$iso.mp4");
    my $p = VconvNginx::probe("$dir/out-$iso.mp4", count_frames => 1);
    is($p && $p->{video} && "$p->{video}{codec_name} $p->{video}{height}",
       'h264 240', "$iso: output h264, 240 lines");
    ok($p && abs($p->{duration} - 30) < 0.2, "$iso: output 30 s long")
        or diag($p ? "duration $p->{duration}" : 'no probe');
    is($p && $p->{video}{nb_read_frames}, 750,
       "$iso: output has all 750 frames");

    # the slot count came back right: two more jobs run one at a time
    my @ids;
    for my $i (1 .. 2) {
        my $r = $ng->post_file('/api/jobs?format=mp4&height=96', $mp4,
                               name => "after$i.mp4");
        push @ids, $r->{json} ? $r->{json}{id} : '';
    }
    my @j = map { $ng->wait_job($_, 180) // {} } @ids;
    is(join(' ', map { $_->{status} // '' } @j), 'done done',
       "$iso: two later jobs are done");
    my ($s0, $f0, $s1, $f1) = map { time_ms(@$_) // 0 }
        [$j[0], 'started'], [$j[0], 'finished'],
        [$j[1], 'started'], [$j[1], 'finished'];
    ok($s1 >= $f0 - 5 || $s0 >= $f1 - 5,
       "$iso: and never at the same time")
        or diag("started $s0 $s1, finished $f0 $f1");

    $ng->assert_clean_log;
    $ng->stop;
}

done_testing;
