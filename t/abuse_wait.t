#!/usr/bin/perl
# Issue 18, item 4 and the last part of 6: wait=1 leaves nothing.
#  - once a wait=1 answer is sent, the job's record and files are gone
#    (also for a job that ended before its upload did);
#  - keep=1 keeps the job and says where: Location, X-Vconv-Job-Id;
#  - a client that disconnects during wait=1 cancels its transcode, and
#    the job leaves nothing;
#  - wait, keep and name given twice -> 400 duplicate_option, like every
#    other option.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time sleep);
use VconvNginx;
use VconvAbuse;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $mp4 = VconvNginx::make_media($dir, 'mp4', size => '160x120', duration => 1);
# streamable (Matroska): a job on it can end before its upload does
my $big = "$dir/big.mkv";
system('ffmpeg', '-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i',
       'testsrc2=size=320x240:rate=25:duration=10', '-c:v', 'libx264',
       '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-f', 'matroska', $big) == 0
    or die "ffmpeg failed\n";
my $slow = VconvNginx::make_media($dir, 'slow', duration => 20);

my $ng = VconvNginx->new(workers => 2)->start;

sub empty_zone {
    my ($what) = @_;
    my $ok = VconvNginx::poll(10, sub {
        my $m = VconvAbuse::metrics($ng);
        !@{$ng->store_entries} && $m->{vconv_jobs_in_zone} == 0;
    });
    ok($ok, "$what: no folder in the store, no record in the zone")
        or diag('store: @{$ng->store_entries}; '
                . explain(VconvAbuse::metrics($ng)));
}

# --- wait=1 leaves nothing --------------------------------------------------
{
    my $r = $ng->post_file('/api/jobs?format=mp4&height=96&wait=1', $mp4,
                           name => 'w.mp4', output => "$dir/w.mp4");
    is($r->{status}, 200, 'wait=1 -> 200 and the file');
    my $p = VconvNginx::probe("$dir/w.mp4");
    is($p && $p->{video} && $p->{video}{height}, 96, '... a 96-line video');
    ok(!$r->{headers}{location} && !$r->{headers}{'x-vconv-job-id'},
       '... no job id given');
    empty_zone('after the wait=1 answer');

    # a job that ends before its upload does (one JPEG frame, a slow body)
    my $rate = int((-s $big) / 4);
    $r = $ng->post_file('/api/jobs?format=jpg&start=0&wait=1', $big,
                        name => 'f.mkv', limit_rate => $rate,
                        output => "$dir/f.jpg");
    is($r->{status}, 200, 'wait=1 of a job done before its upload ended -> 200');
    $p = VconvNginx::probe("$dir/f.jpg");
    is($p && $p->{video} && $p->{video}{codec_name}, 'mjpeg', '... a JPEG');
    empty_zone('after the early job\'s answer');

    # a wait=1 failure too
    $r = $ng->post_file('/api/jobs?format=mp4&wait=1', $0, name => 'x.txt');
    is($r->{status}, 415, 'wait=1 of a text file -> 415');
    empty_zone('after the wait=1 error');
}

# --- keep=1 -------------------------------------------------------------------
{
    my $r = $ng->post_file('/api/jobs?format=mp4&height=96&wait=1&keep=1',
                           $mp4, name => 'k.mp4', output => "$dir/k.mp4");
    is($r->{status}, 200, 'wait=1&keep=1 -> 200 and the file');
    my $id = $r->{headers}{'x-vconv-job-id'} // '';
    like($id, qr/^[0-9a-f]{32}$/, '... X-Vconv-Job-Id gives the id');
    is($r->{headers}{location}, "/api/jobs/$id", '... and Location the job');
    my $job = $ng->wait_job($id, 10);
    is($job->{status}, 'done', 'the kept job answers GET: done');
    $ng->download($id, "$dir/k2.mp4");
    is(-s "$dir/k2.mp4", -s "$dir/k.mp4", 'its output is the file sent');
    is($ng->delete($id)->{status}, 204, 'and it can be deleted');
    empty_zone('after keep=1 and DELETE');
}

# --- a client gone during wait=1 cancels -----------------------------------
{
    my $p = $ng->post_file('/api/jobs?format=webm&wait=1', $slow,
                           name => 'gone.mp4', async => 1, max_time => 120);
    my $running = VconvNginx::poll(30, sub {
        VconvAbuse::metrics($ng)->{'vconv_jobs{state="running"}'};
    });
    ok($running, 'the wait=1 job runs');
    my $t0 = time;
    $p->kill;
    my $gone = VconvNginx::poll(30, sub {
        my $m = VconvAbuse::metrics($ng);
        $m->{'vconv_jobs_finished_total{result="canceled"}'} == 1
            && $m->{vconv_jobs_in_zone} == 0;
    });
    my $took = time - $t0;
    ok($gone, 'the client gone, its job ends canceled and leaves the zone');
    diag(sprintf 'canceled and removed %.2f s after the disconnect', $took);
    like($ng->error_log, qr/the client of a wait=1 job is gone/,
         '... and the log says why');
    empty_zone('after the disconnect');
}

# --- an upload whose client goes before the answer leaves nothing ---------
for my $q ('format=mp4', 'format=mp4&wait=1') {
    my $data = do { open my $fh, '<:raw', $big or die; local $/; <$fh> };
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ng->port) or die $!;
    print $s "POST /api/jobs?$q HTTP/1.1\r\nHost: x\r\n"
           . "Content-Length: " . length($data) . "\r\n\r\n"
           . substr($data, 0, length($data) / 2);
    sleep 1;
    close $s;
    empty_zone("$q, the client gone halfway through the body");
}

# --- wait, keep, name twice --------------------------------------------------
for my $q ('wait=1&wait=0', 'wait=0&height=96&wait=0', 'keep=1&keep=1',
           'name=a.mp4&name=b.mp4')
{
    my $r = $ng->post_file("/api/jobs?format=mp4&$q", $mp4);
    VconvNginx::is_api_error($r, 400, 'duplicate_option', "$q -> 400 duplicate_option");
    like($r->{json} && $r->{json}{error}{message} // '', qr/more than once/,
         '... the message says so');
}
{
    my $r = $ng->post_multipart('/api/jobs?wait=0', file => $mp4,
                                fields_before => [format => 'mp4', wait => 0]);
    VconvNginx::is_api_error($r, 400, 'duplicate_option',
                             'wait in the query and in the form -> 400');
    $r = $ng->post_file('/api/jobs?format=mp4&wait=2', $mp4);
    VconvNginx::is_api_error($r, 400, 'invalid_value', 'wait=2 -> 400 invalid_value');
    $r = $ng->post_file('/api/jobs?format=mp4&keep=yes', $mp4);
    VconvNginx::is_api_error($r, 400, 'invalid_value', 'keep=yes -> 400 invalid_value');
}
empty_zone('after the refusals');

$ng->assert_clean_log;
$ng->stop;
done_testing();
