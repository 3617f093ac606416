#!/usr/bin/perl
# Bombs and budgets: headers declaring 64000x64000 pictures, a mid-stream
# resolution change, thousands of streams, each vconv_max_* limit with its
# own error code; and no hangs: truncated input, a stalled upload, DELETE
# in every phase we can reach.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use IO::Socket::INET;
use IO::Select;
use Test::More;
our $TODO;
use Time::HiRes qw(time sleep);
use VconvNginx;
use VconvMedia ();
use VconvHostile qw(:all);

my $dir = tempdir('vconv-hb-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $J = VconvNginx->json;

sub final_job {
    my ($ng, $r, $timeout) = @_;
    return undef unless $r->{status} == 202 && $r->{json} && $r->{json}{id};
    return $ng->wait_job($r->{json}{id}, $timeout // 30);
}

sub desc { my ($j) = @_; $j ? "$j->{status} " . ($j->{error}{code} // '') : 'no job' }

sub failed_with {
    my ($ng, $file, $query, $codes, $name) = @_;
    my $r = $ng->post_file("/api/jobs?$query", $file,
                           name => (split m{/}, $file)[-1]);
    my $job;
    if ($r->{status} == 202) {
        $job = final_job($ng, $r, 60);
        ok($job && $job->{status} eq 'failed'
           && ($job->{error}{code} // '') =~ /^(?:$codes)$/,
           "$name: job failed ($codes) [" . desc($job) . ']')
            or diag($J->encode($job // {}));
    } else {
        my $code = $r->{json} && ref $r->{json}{error} eq 'HASH'
                 ? $r->{json}{error}{code} // '' : '';
        ok($r->{status} =~ /^4\d\d$/ && $code =~ /^(?:$codes)$/,
           "$name: refused $r->{status} ($codes) [$code]")
            or diag(substr($r->{body}, 0, 300));
    }
    return $job;
}

# ---------------------------------------------------------------- media
my $png = "$dir/small.png";
ff('-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=1:duration=1',
   '-frames:v', '1', $png);
my $gif = "$dir/small.gif";
ff('-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=10:duration=0.5', $gif);
my $mkv = VconvMedia::make_media($dir, 'mkv', name => 'small.mkv');

my $png_bomb = png_huge($dir, $png, 'bomb.png', 64000, 64000);
my $gif_bomb = gif_huge($dir, $gif, 'bomb.gif', 64000, 64000);
my $gif_bomb2 = gif_huge($dir, $gif, 'bomb2.gif', 64000, 64000, image_too => 1);
my $mkv_bomb = mkv_patch_dims($mkv, "$dir/bomb.mkv", 64000, 64000);

# ---------------------------------------------------------------- bombs
{
    my $ng = VconvNginx->new(workers => 1)->start;
    my $wpid = $ng->worker_pids->[0];
    # warm up: thread pool, codecs, encoders are loaded once
    my $warm = VconvMedia::make_media($dir, 'mp4', name => 'warm.mp4');
    my $r = $ng->post_file('/api/jobs?format=mp4&wait=1', $warm, name => 'w.mp4');
    is($r->{status}, 200, 'warm-up job converted');
    $r = $ng->post_file('/api/jobs?format=jpg&wait=1', $png, name => 'w.png');
    is($r->{status}, 200, 'warm-up picture converted');
    my $hwm0 = vm_hwm($wpid);
    ok($hwm0, "worker $wpid VmHWM before the bombs: $hwm0 kB");

    for my $t (['PNG IHDR 64000x64000', $png_bomb, 'jpg'],
               ['PNG IHDR 64000x64000', $png_bomb, 'mp4'],
               ['GIF screen 64000x64000', $gif_bomb, 'mp4'],
               ['GIF screen+image 64000x64000', $gif_bomb2, 'gif'])
    {
        my ($name, $f, $fmt) = @$t;
        failed_with($ng, $f, "format=$fmt",
                    'resolution_limit|unsupported_input|decode_error',
                    "$name -> $fmt");
    }

    # container says 64000x64000, the H.264 inside is 320x240: refused,
    # or converted at the real size, never allocated at the claimed one
    $r = $ng->post_file('/api/jobs?format=mp4', $mkv_bomb, name => 'bomb.mkv');
    my $job = final_job($ng, $r, 60);
    ok($job && ($job->{status} eq 'failed'
                && ($job->{error}{code} // '')
                   =~ /^(resolution_limit|unsupported_input|decode_error)$/
                || $job->{status} eq 'done'),
       'MKV PixelWidth/Height 64000: refused or converted [' . desc($job) . ']');
    if ($job && $job->{status} eq 'done') {
        $ng->download($job->{id}, "$dir/bomb-out.mp4");
        my $p = VconvMedia::probe("$dir/bomb-out.mp4");
        my $v = VconvMedia::video_stream($p) // {};
        ok(($v->{width} // 0) <= 320 && ($v->{height} // 0) <= 240,
           "... converted at the real size ($v->{width}x$v->{height})");
    }

    my $hwm1 = vm_hwm($wpid);
    ok(defined $hwm1 && kill(0, $wpid), 'the worker is still the same process');
    cmp_ok(($hwm1 // 1e9) - $hwm0, '<', 100 * 1024,
           "worker peak RSS grew < 100 MB over the bombs ($hwm0 -> "
           . ($hwm1 // '?') . ' kB)');

    # thousands of streams
    my $many = many_tracks_mkv($dir, 'many2000.mkv', 2000);
    failed_with($ng, $many, 'format=mp3', 'too_many_streams',
                'MKV with 2000 audio tracks -> too_many_streams');
    my $many100 = many_streams_mkv($dir, 'many100.mkv', 100);
    failed_with($ng, $many100, 'format=mp3', 'too_many_streams',
                'MKV with 100 audio tracks (made by ffmpeg) -> too_many_streams');
    my $hwm2 = vm_hwm($wpid);
    cmp_ok(($hwm2 // 1e9) - $hwm0, '<', 100 * 1024,
           "... peak RSS still < +100 MB ($hwm2 kB)");
    $ng->assert_clean_log;
    $ng->stop;
}

# ------------------------------------------------ resolution, mid-stream
{
    my $ng = VconvNginx->new(http => "    vconv_max_resolution 640x480;\n")->start;
    my $ts = ts_size_change($dir, 'change.ts', '320x240', '1280x720');
    my $p = VconvMedia::probe($ts);
    is(VconvMedia::video_stream($p)->{width}, 320,
       'the size-change TS starts at 320x240');
    failed_with($ng, $ts, 'format=mp4', 'resolution_limit',
                'TS 320x240 then 1280x720 with max 640x480 -> resolution_limit');
    TODO: {
        # a remux never decodes, so only the stream's header size is
        # checked; a size change inside copied packets is not seen yet
        local $TODO = 'remux: the frame size is checked at the probe only';
        failed_with($ng, $ts, 'format=mp4&vcodec=copy', 'resolution_limit',
                    '... also as a remux (vcodec=copy)');
    }
    my $hd = VconvMedia::make_media($dir, 'mp4', size => '1280x720',
                                    duration => 1, name => 'hd.mp4');
    failed_with($ng, $hd, 'format=mp4', 'resolution_limit',
                'vconv_max_resolution 640x480: 1280x720 input -> resolution_limit');
    my $ok = VconvMedia::make_media($dir, 'mp4', size => '640x480',
                                    duration => 1, name => 'vga.mp4');
    my $r = $ng->post_file('/api/jobs?format=mp4&wait=1', $ok, name => 'vga.mp4');
    is($r->{status}, 200, '... a 640x480 input is fine');
    $ng->assert_clean_log;
    $ng->stop;
}

# ------------------------------------------------ duration, output size
{
    my $ng = VconvNginx->new(http => "    vconv_max_duration 1s;\n")->start;
    my $three = VconvMedia::make_media($dir, 'mp4', duration => 3,
                                       name => 'three.mp4');
    failed_with($ng, $three, 'format=mp4', 'duration_limit',
                'vconv_max_duration 1s: 3 s clip -> duration_limit');
    my $three_ts = VconvMedia::make_media($dir, 'ts', duration => 3,
                                          name => 'three.ts');
    failed_with($ng, $three_ts, 'format=mp4', 'duration_limit',
                'vconv_max_duration 1s: 3 s MPEG-TS -> duration_limit');
    $ng->assert_clean_log;
    $ng->stop;

    $ng = VconvNginx->new(http => "    vconv_max_output_size 10k;\n")->start;
    failed_with($ng, $three, 'format=mp4', 'output_size_limit',
                'vconv_max_output_size 10k: 3 s clip -> output_size_limit');
    failed_with($ng, $three, 'format=wav', 'output_size_limit',
                'vconv_max_output_size 10k: 3 s to wav -> output_size_limit');
    $ng->assert_clean_log;
    $ng->stop;
}

# ---------------------------------------------------------------- hangs
my $ng = VconvNginx->new(
    workers => 1,
    http    => "    vconv_stall_timeout 2s;\n",
)->start;

# truncated MP4 with moov at the start
{
    my $full = "$dir/faststart.mp4";
    ff('-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=3',
       '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
       '-movflags', '+faststart', $full);
    my $d = slurp($full);
    my $half = spew("$dir/half.mp4", substr($d, 0, int(length($d) / 2)));
    my $t0 = time;
    my $r = $ng->post_file('/api/jobs?format=webm', $half, name => 'half.mp4');
    my $job = final_job($ng, $r, 30);
    ok($job && $job->{status} =~ /^(done|failed)$/,
       sprintf('truncated faststart MP4 ends, not hung (%s after %.1f s)',
               desc($job), time - $t0));
    # moov cut off too: a sure failure
    my $tiny = spew("$dir/head.mp4", substr($d, 0, 2000));
    $r = $ng->post_file('/api/jobs?format=webm&wait=1', $tiny, name => 'head.mp4');
    ok($r->{status} =~ /^4\d\d$/,
       "MP4 cut inside moov: a 4xx with wait=1 ($r->{status})");
}

sub new_ids {
    my ($ng, $before) = @_;
    my %b = map { $_ => 1 } @$before;
    return grep { !$b{$_} } @{ $ng->store_entries };
}

# DELETE, then wait for 404 + no folder; returns (answer, s to answer,
# s until gone or undef)
sub delete_and_watch {
    my ($ng, $id) = @_;
    my $t0 = time;
    my $d = $ng->delete($id, max_time => 10);
    my $t_answer = time - $t0;
    my $gone = VconvNginx::poll(8, sub {
        $ng->get("/api/jobs/$id", max_time => 2)->{status} == 404
            && !-e $ng->store . "/$id";
    }, 0.05);
    return ($d, $t_answer, $gone ? time - $t0 : undef);
}

# raw client: headers + part of the body, then it waits (and we keep the
# socket open)
sub half_upload {
    my ($ng, $path, $data, $send) = @_;
    return $ng->raw_upload($path, $data, $send, name => 'stall.mp4');
}

sub read_answer {
    my ($s, $timeout) = @_;
    my $sel = IO::Select->new($s);
    my $buf = '';
    my $end = time + $timeout;
    while (time < $end && $sel->can_read($end - time)) {
        my $n = sysread($s, $buf, 65536, length $buf);
        last unless $n;
    }
    return $buf;
}

# stalled upload: half the body, then nothing
{
    my $mp4 = VconvMedia::make_media($dir, 'mkv', duration => 2, name => 'stall.mkv');
    my $data = slurp($mp4);
    my @before = @{ $ng->store_entries };
    my $t0 = time;
    my $s = half_upload($ng, '/api/jobs?format=mp4', $data, int(length($data) / 2));
    my ($id) = @{[ VconvNginx::poll(5, sub { my @n = new_ids($ng, \@before); $n[0] }) ]};
    ok($id, 'the stalled upload has a job folder') or diag('store: ' . "@{ $ng->store_entries }");
    $id //= 'none';
    # the end shows as the job JSON (failed, stalled) or, as the server
    # drops jobs whose upload was answered with an error, as the answer on
    # the upload connection (408 stalled) with the job gone: watch both
    my ($job, $ans) = (undef, '');
    my $sel = IO::Select->new($s);
    VconvNginx::poll(15, sub {
        while ($sel->can_read(0)) {
            my $n = sysread($s, $ans, 65536, length $ans);
            last unless $n;
        }
        my $r = $ng->get("/api/jobs/$id", max_time => 5);
        $job = $r->{json} if $r->{status} == 200;
        ($job && $VconvNginx::FINAL{ $job->{status} // '' })
            || $ans =~ /\r\n\r\n\{/;
    }, 0.1);
    my $took = time - $t0;
    $ans .= read_answer($s, 1) unless $ans =~ /\}\s*$/;
    my ($status) = $ans =~ m{^HTTP/1\.\d (\d+)};
    my ($body) = $ans =~ /\r\n\r\n(.*)$/s;
    my $aj = eval { $J->decode($body // '') } // {};
    my $code_job = $job && $job->{status} eq 'failed' ? $job->{error}{code} // '' : '';
    my $code_ans = ref $aj->{error} eq 'HASH' ? $aj->{error}{code} // '' : '';
    ok($code_job eq 'stalled' || $code_ans eq 'stalled',
       sprintf('stalled upload with vconv_stall_timeout 2s -> stalled '
               . '(job: %s; answer: %s %s; %.1f s)', desc($job),
               $status // 'none', $code_ans, $took))
        or diag("answer: " . substr($ans, 0, 400));
    cmp_ok($took, '<', 8, '... within a few seconds');
    ok(!defined $status || $status == 408,
       'the stalled client gets 408 (or the connection is closed) ('
       . ($status // 'no answer, ' . length($ans) . ' bytes') . ')');
    my $after = $ng->get("/api/jobs/$id");
    ok($after->{status} == 404
       || ($after->{json} && ($after->{json}{status} // '') eq 'failed'),
       "... afterwards the job is gone or failed ($after->{status})");
    close $s;
}

# DELETE during upload
{
    my $big = VconvMedia::make_media($dir, 'mp4', size => '1280x720',
                                     duration => 4, name => 'up.mp4');
    my @before = @{ $ng->store_entries };
    my $up = $ng->post_file('/api/jobs?format=mp4', $big, name => 'up.mp4',
                            async => 1, limit_rate => '100k', max_time => 60);
    my ($id) = @{[ VconvNginx::poll(5, sub { my @n = new_ids($ng, \@before); $n[0] }) ]};
    ok($id, 'slow upload has a job folder');
    $id //= 'none';
    sleep 0.5;
    my ($d, $ta, $tg) = delete_and_watch($ng, $id);
    is($d->{status}, 204, sprintf('DELETE during upload -> 204 (answer in %.2f s)', $ta));
    ok(defined $tg && $tg < 2, sprintf('... job 404 and folder gone in %s s (< 2 s)',
                                       defined $tg ? sprintf('%.2f', $tg) : 'more than 8'));
    # the upload is answered or closed soon after the DELETE; a curl that
    # the harness had to kill at the deadline shows as exit 28
    my $ended = VconvNginx::poll(3, sub { $up->done });
    my $ur = $up->wait(1);
    ok($ended && $ur->{curl_exit} != 28,
       sprintf('... the upload request ended within 3 s (%s, curl exit %s)',
               $ur->{status}, $ur->{curl_exit}));
}

# DELETE while the reader waits in the probe (only a few bytes sent)
{
    my $mp4 = VconvMedia::make_media($dir, 'mp4', duration => 2, name => 'probe.mp4');
    my $data = slurp($mp4);
    my @before = @{ $ng->store_entries };
    my $s = half_upload($ng, '/api/jobs?format=mp4', $data, 64);
    my ($id) = @{[ VconvNginx::poll(5, sub { my @n = new_ids($ng, \@before); $n[0] }) ]};
    ok($id, 'probe-phase job has a folder');
    $id //= 'none';
    sleep 0.3;
    my $st = $ng->get("/api/jobs/$id")->{json} // {};
    my ($d, $ta, $tg) = delete_and_watch($ng, $id);
    is($d->{status}, 204, sprintf('DELETE while probing (status was %s) -> 204',
                                  $st->{status} // '?'));
    cmp_ok($ta, '<', 2, sprintf('... DELETE answered in %.2f s (< 2 s)', $ta));
    ok(defined $tg && $tg < 2, sprintf('... job 404 and folder gone in %s s (< 2 s)',
                                       defined $tg ? sprintf('%.2f', $tg) : 'more than 8'));
    close $s;
}

# DELETE during a running transcode of a long 1080p clip
{
    my $hd = "$dir/long1080.mp4";
    ff('-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=25:duration=8',
       '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', $hd);
    my $r = $ng->post_file('/api/jobs?format=webm', $hd, name => 'long.mp4');
    is($r->{status}, 202, '1080p job taken');
    my $id = $r->{json} ? $r->{json}{id} : 'none';
    my $running = VconvNginx::poll(20, sub {
        my $j = $ng->get("/api/jobs/$id")->{json} // {};
        ($j->{status} // '') eq 'running' && ($j->{progress} // 0) > 0;
    }, 0.1);
    ok($running, '... running with progress');
    my ($d, $ta, $tg) = delete_and_watch($ng, $id);
    is($d->{status}, 204, sprintf('DELETE while transcoding -> 204 (answer in %.2f s)', $ta));
    ok(defined $tg && $tg < 2, sprintf('... job 404 and folder gone in %s s (< 2 s)',
                                       defined $tg ? sprintf('%.2f', $tg) : 'more than 8'));
    # the pool thread is free again: a small job runs right away
    my $small = VconvMedia::make_media($dir, 'mp4', name => 'after.mp4');
    my $t0 = time;
    $r = $ng->post_file('/api/jobs?format=mp4&wait=1', $small, name => 'after.mp4',
                        max_time => 30);
    is($r->{status}, 200, sprintf('a job after the cancel is done (%.1f s)', time - $t0));
}

$ng->assert_clean_log;
$ng->stop;

done_testing;
