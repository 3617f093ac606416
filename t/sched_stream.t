#!/usr/bin/perl
# The scheduler and streaming uploads (issue 11): a streaming upload
# queued behind a running job keeps spooling, and converts from the spool
# once it gets the slot (its output checked by ffprobe).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(time sleep);
use VconvNginx;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $mp4 = VconvNginx::make_media($dir, 'mp4');
my $long = VconvNginx::make_media($dir, 'slow', duration => 60,
                                  size => '640x480');
# big enough to be queued while a 200 kB/s upload of it goes on
my $big = VconvNginx::make_media($dir, 'slow', duration => 40);
cmp_ok(-s $big, '>', 1.5 * 1024 * 1024, 'the streamed clip is over 1.5 MiB');

my $ng = VconvNginx->new(
    workers => 2,
    http => "    vconv_max_running 1;\n",
)->start;

# --- a streaming upload queued behind a running job ---------------------

my $a = $ng->post_file('/api/jobs?format=mp4', $long, name => 'long.mp4');
is($a->{status}, 202, 'long job -> 202');
$a = $a->{json}{id};
ok(VconvNginx::poll(60, sub {
    ($ng->get("/api/jobs/$a")->{json}{status} // '') eq 'running' }),
   'the long job runs');

my $up = $ng->post_file('/api/jobs?format=mp4&height=120', $big,
                        name => 'stream.mp4', async => 1,
                        limit_rate => '200k', max_time => 120);

# the job shows up in the listing only by id: find it from the store
my $sid;
ok(VconvNginx::poll(30, sub {
    my @e = grep { $_ ne $a } @{ $ng->store_entries };
    $sid = $e[0] if @e == 1;
    return $sid;
}), 'the streaming upload has a job');

my $queued;
VconvNginx::poll(30, sub {
    my $j = $ng->get("/api/jobs/$sid")->{json} // {};
    $queued = $j if ($j->{status} // '') eq 'queued';
    return $queued || $up->done;
});
ok($queued && !$up->done, 'queued while its upload goes on')
    or diag($queued ? 'upload over already' : 'never queued');
is($queued && $queued->{queue_position}, 1, 'queue position 1');

# a second one queues behind it, and leaves when its client goes
my $up2 = $ng->post_file('/api/jobs?format=mp4&height=120', $big,
                         name => 'gone.mp4', async => 1,
                         limit_rate => '200k', max_time => 120);
my $gid;
VconvNginx::poll(30, sub {
    my @e = grep { $_ ne $a && $_ ne $sid } @{ $ng->store_entries };
    $gid = $e[0] if @e == 1;
    return $gid && ($ng->get("/api/jobs/$gid")->{json}{status} // '')
                   eq 'queued';
});
my $g = $gid ? $ng->get("/api/jobs/$gid")->{json} // {} : {};
is($g->{queue_position}, 2, 'a second streaming upload queues second');
$up2->kill;
ok(VconvNginx::poll(20, sub {
    $ng->get("/api/jobs/$gid")->{status} == 404 && !-e $ng->store . "/$gid"
}), 'its client gone, the queued upload leaves nothing');
is($ng->get("/api/jobs/$sid")->{json}{queue_position}, 1,
   'the first one is still first');

# it keeps spooling while it waits
my $b0 = $queued ? $queued->{input}{bytes} : 0;
ok(VconvNginx::poll(20, sub {
    my $j = $ng->get("/api/jobs/$sid")->{json} // {};
    return ($j->{input}{bytes} // 0) > $b0 && ($j->{status} // '') eq 'queued';
}), 'the queued upload keeps spooling');

is($ng->delete($a)->{status}, 204, 'the long job is canceled');

my $r = $up->wait(150);
is($r->{status}, 202, 'the streaming upload -> 202') or diag($r->{body});
my $job = $ng->wait_job($sid, 120) // {};
is($job->{status}, 'done', 'the streamed job is done');
is($job->{input}{bytes}, -s $big, 'every byte of it was read');
$ng->download($sid, "$dir/stream.mp4");
my $p = VconvNginx::probe("$dir/stream.mp4", count_frames => 1);
is($p && $p->{video} && "$p->{video}{codec_name} $p->{video}{height}",
   'h264 120', 'output h264, 120 lines');
ok($p && abs($p->{duration} - 40) < 0.2, 'output 40 s long')
    or diag($p ? "duration $p->{duration}" : 'no probe');
is($p && $p->{video}{nb_read_frames}, 1000, 'output has all 1000 frames');

$ng->assert_clean_log;
$ng->stop;
done_testing;
