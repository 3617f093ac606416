# TTL by the clock: a job that takes seconds expires ttl after it
# finished (not after it was created), and is gone within 2 s of that; a
# job that expired while nginx was stopped is gone after the start; a
# folder that belongs to no job is swept.
use strict;
use warnings;

use lib 't/lib';
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(time sleep);

use VconvNginx;

my $dir = tempdir(CLEANUP => 1);
my $mp4 = VconvNginx::make_media($dir, 'mp4', duration => 2);
my $size = -s $mp4;

# an MP4 with its index at the end converts only once all of it is in: at
# this rate the job runs for about 3.5 s
my $rate = int($size / 3.5);

# --- expires = finished + ttl, gone by then + 2 s ---------------------------
{
    my $ng = VconvNginx->new(store_opts => 'ttl=3s')->start;
    my $r = $ng->post_file('/api/jobs?format=mp4&height=96', $mp4,
                           name => 'ttl.mp4', limit_rate => $rate);
    is($r->{status}, 202, 'slow upload with ttl=3s');
    my $id = $r->{json} ? $r->{json}{id} : 'none';
    my $job = $ng->wait_job($id, 60) // {};
    is($job->{status}, 'done', 'job done');

    my $created = VconvNginx::ts($job->{created}) // 0;
    my $fin = VconvNginx::ts($job->{finished}) // 0;
    my $exp = VconvNginx::ts($job->{expires}) // 0;
    cmp_ok($fin - $created, '>=', 2.5, 'the job took seconds')
        or diag("created $job->{created} finished $job->{finished}");
    ok(abs($exp - $fin - 3) <= 1, 'expires = finished + ttl')
        or diag("finished $job->{finished} expires $job->{expires}");

    my $seen_after;
    my $gone = VconvNginx::poll(20, sub {
        if ($ng->get("/api/jobs/$id")->{status} == 200) {
            $seen_after = time;
            return 0;
        }
        return !-e $ng->store . "/$id";
    }, 0.1);
    my $at = time;
    ok($gone, 'after the TTL the job is 404 and its folder gone');
    cmp_ok($at - $exp, '<=', 2.5, 'gone within 2 s of expires')
        or diag(sprintf('gone %.1f s after expires', $at - $exp));
    cmp_ok(($seen_after // 0) - $exp, '>=', -1.5,
           'still answered until about expires')
        or diag(sprintf('last seen %.1f s before expires',
                        $exp - ($seen_after // 0)));
    $ng->assert_clean_log;
    $ng->stop;
}

# --- expired while nginx was stopped ------------------------------------------
{
    my $ng = VconvNginx->new(store_opts => 'ttl=2s')->start;
    my $r2 = $ng->post_file('/api/jobs?format=mp4&height=96', $mp4,
                            name => 'stop.mp4');
    my $id = $r2->{json} ? $r2->{json}{id} : 'none';
    my $job = $ng->wait_job($id, 30) // {};
    is($job->{status}, 'done', 'job done before the stop');
    $ng->stop;
    ok(-e $ng->store . "/$id", 'its folder is kept while nginx is down');
    sleep 3;
    $ng->start;
    my $gone = VconvNginx::poll(5, sub {
        $ng->get("/api/jobs/$id")->{status} == 404
            && !-e $ng->store . "/$id";
    }, 0.2);
    ok($gone, 'a job that expired while nginx was stopped is gone');
    $ng->assert_clean_log;
    $ng->stop;
}

# --- a folder that belongs to no job -----------------------------------------
{
    my $ng = VconvNginx->new(store_opts => 'ttl=1h')->start;
    my $orphan = $ng->store . '/' . ('0123456789abcdef' x 2);
    mkdir $orphan or die "$orphan: $!";
    open my $fh, '>', "$orphan/input" or die $!;
    print $fh 'x' x 1000;
    close $fh;
    my $old = time - 3600;
    utime $old, $old, "$orphan/input", $orphan;

    # the store's own folder and a live job's are not orphans
    my $r = $ng->post_file('/api/jobs?format=mp4&height=96', $mp4,
                           name => 'live.mp4');
    my $id = $r->{json} ? $r->{json}{id} : 'none';
    is(($ng->wait_job($id, 30) // {})->{status}, 'done', 'a live job');

    my $gone = VconvNginx::poll(75, sub { !-e $orphan }, 0.5);
    ok($gone, 'an hour-old folder without job.json is swept');
    ok(-e $ng->store . "/$id/job.json", 'the live job is kept');
    is($ng->get("/api/jobs/$id")->{status}, 200, 'and still answered');
    $ng->stop;
}

done_testing;
